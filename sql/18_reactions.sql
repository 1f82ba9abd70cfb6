--
-- Reactions: chat_react / chat_unreact, members only, one per (message,
-- user, emoji), at most 20 distinct emoji per message.  The message keeps
-- the summary that history and sync send, and each change bumps the
-- channel's change counter and hints "e" to the workers.
--
\set SHOW_CONTEXT never

INSERT INTO regress_ids VALUES ('rx', chat_create_channel('group', 'rx', ARRAY['dina', 'sam', 'tom']));
SELECT seq FROM chat_send(ch('rx'), 'dina', 'Load 7 is ready');
SELECT seq FROM chat_send(ch('rx'), 'dina', 'Load 8 too');
SELECT last_change FROM chat.channels WHERE id = ch('rx');
SELECT count(*) >= 0 AS listening FROM chat._events_take();

SELECT seq, reactions, change_seq FROM chat_react(msg('rx', 1), 'sam', '👍');
SELECT seq, reactions, change_seq FROM chat_react(msg('rx', 1), 'tom', '👍');
SELECT seq, reactions, change_seq FROM chat_react(msg('rx', 1), 'tom', '🚚');
-- The same reaction again changes nothing and announces nothing.
SELECT seq, reactions, change_seq FROM chat_react(msg('rx', 1), 'tom', '👍');
SELECT last_change FROM chat.channels WHERE id = ch('rx');
SELECT kind, seq FROM chat._events_take();
-- history and since carry the summary; an unreacted message has none.
SELECT seq, reactions FROM chat_history(ch('rx'));
-- A sync from change counter 1 finds the message again (like an edit).
SELECT seq, change_seq FROM chat.messages WHERE channel_id = ch('rx') AND change_seq > 1 ORDER BY change_seq;

-- Removing: the count goes down; the last one removes the emoji.
SELECT reactions FROM chat_unreact(msg('rx', 1), 'sam', '👍');
SELECT reactions FROM chat_unreact(msg('rx', 1), 'tom', '🚚');
SELECT reactions FROM chat_unreact(msg('rx', 1), 'tom', '👍');
-- Removing what is not there changes nothing.
SELECT reactions, change_seq FROM chat_unreact(msg('rx', 1), 'tom', '👍');
SELECT kind, seq FROM chat._events_take();
SELECT count(*) FROM chat.reactions WHERE channel_id = ch('rx');

-- A rolled-back reaction leaves nothing, and no hint.
BEGIN;
SELECT reactions FROM chat_react(msg('rx', 2), 'sam', '✅');
ROLLBACK;
SELECT reactions FROM chat.messages WHERE id = msg('rx', 2);
SELECT kind, seq FROM chat._events_take();

-- At most 20 different emoji per message; more of an existing one is fine.
SELECT count(*) FROM (SELECT chat_react(msg('rx', 2), 'sam', e)
					  FROM unnest(ARRAY['😀','😁','😂','🤣','😃','😄','😅','😆','😉','😊',
										'😋','😎','😍','😘','🥰','😗','😙','😚','🙂','🤗']) e) x;
SELECT err($$SELECT chat_react(msg('rx', 2), 'sam', '🤩')$$);
SELECT jsonb_array_length(reactions) AS emoji, (reactions->0->>'count')::int AS first_count
FROM chat_react(msg('rx', 2), 'tom', '😀');

-- Deleting the message hides its reactions from clients; no new ones.
SELECT chat_delete(msg('rx', 2), 'dina');
SELECT err($$SELECT chat_react(msg('rx', 2), 'tom', '👍')$$);

-- Errors.
SELECT err($$SELECT chat_react(msg('rx', 1), 'mallory', '👍')$$);
SELECT err($$SELECT chat_react('00000000-0000-0000-0000-000000000000', 'sam', '👍')$$);
SELECT err($$SELECT chat_react(NULL, 'sam', '👍')$$);
SELECT err($$SELECT chat_react(msg('rx', 1), NULL, '👍')$$);
SELECT err($$SELECT chat_react(msg('rx', 1), 'sam', NULL)$$);
SELECT err($$SELECT chat_react(msg('rx', 1), 'sam', '')$$);
SELECT err($$SELECT chat_react(msg('rx', 1), 'sam', 'thumbs up')$$);
SELECT err($$SELECT chat_react(msg('rx', 1), 'sam', repeat('x', 17))$$);
SELECT err($$SELECT chat_unreact(msg('rx', 1), 'mallory', '👍')$$);

-- chat_app may react, but not write the table.
SELECT msg('rx', 1) AS rx1 \gset
SET ROLE chat_app;
SELECT reactions FROM chat_react(:'rx1', 'sam', '👌');
SELECT err($$DELETE FROM chat.reactions$$);
RESET ROLE;

-- Deleting the channel deletes its reactions.
SELECT count(*) FROM chat.reactions WHERE channel_id = ch('rx');
DELETE FROM chat.channels WHERE id = ch('rx');
SELECT count(*) AS after_drop FROM chat.reactions WHERE channel_id = ch('rx');
