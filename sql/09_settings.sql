--
-- The limits are read at every call, so a reload changes them; the
-- setting's unit (B, kB, MB) is understood.
--

ALTER SYSTEM SET chat.max_message_bytes = 10;
ALTER SYSTEM SET chat.max_group_members = 3;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
\c -
SELECT current_setting('chat.max_message_bytes') AS max_message_bytes,
	   chat._max_message_bytes() AS in_bytes,
	   current_setting('chat.max_group_members') AS max_group_members;

SELECT octet_length(content) FROM chat_send(ch('solo'), 'alice', repeat('x', 10));
SELECT err($$SELECT chat_send(ch('solo'), 'alice', repeat('x', 11))$$);
SELECT err($$SELECT chat_edit(msg('solo', 1), 'alice', repeat('x', 11))$$);
SELECT err($$SELECT chat_create_channel('group', 'four', ARRAY['a', 'b', 'c', 'd'])$$);
-- team has 5 members, more than the new limit: they stay, roles can
-- change, nobody new gets in.
SELECT count(*) AS team_members FROM chat.channel_members WHERE channel_id = ch('team');
SELECT chat_add_member(ch('team'), 'bob', 'admin');
SELECT err($$SELECT chat_add_member(ch('team'), 'newcomer')$$);
SELECT chat_add_member(ch('team'), 'bob', 'member');

ALTER SYSTEM SET chat.max_message_bytes = '1MB';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
\c -
SELECT current_setting('chat.max_message_bytes') AS max_message_bytes,
	   chat._max_message_bytes() AS in_bytes;

ALTER SYSTEM RESET chat.max_message_bytes;
ALTER SYSTEM RESET chat.max_group_members;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
\c -
SELECT current_setting('chat.max_message_bytes') AS max_message_bytes,
	   chat._max_message_bytes() AS in_bytes,
	   current_setting('chat.max_group_members') AS max_group_members;
