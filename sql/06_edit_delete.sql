--
-- chat_edit and chat_delete: who may, what is kept, what clients see.
--

INSERT INTO regress_ids VALUES ('ed', chat_create_channel('group', 'ed', ARRAY['alice', 'bob', 'carol']));
SELECT seq FROM chat_send(ch('ed'), 'bob', 'bob says hi',
	attachments => '[{"url": "https://x.example/p.png", "name": "p.png", "size": 3, "mime": "image/png"}]');
SELECT seq FROM chat_send(ch('ed'), 'carol', 'carol says hi');
SELECT seq FROM chat_send(ch('ed'), 'bob', 'bob again');

-- The sender edits: new content, edited_at set, the channel's change
-- counter bumped and stamped on the message; attachments stay.
SELECT seq, content, edited_at IS NOT NULL AS edited, deleted_at, change_seq, attachments IS NOT NULL AS has_attachments
FROM chat_edit(msg('ed', 1), 'bob', 'bob says hello');
SELECT last_seq, last_change FROM chat.channels WHERE id = ch('ed');
-- A second edit; the previous contents are kept, in order.
SELECT seq, content, change_seq FROM chat_edit(msg('ed', 1), 'bob', 'bob says hello!');
SELECT version, content, attachments IS NOT NULL AS has_attachments, action, by_user, at IS NOT NULL AS has_at
FROM chat.message_versions WHERE message_id = msg('ed', 1) ORDER BY version;
-- The same content again changes nothing.
SELECT seq, content, change_seq FROM chat_edit(msg('ed', 1), 'bob', 'bob says hello!');
SELECT count(*) AS versions FROM chat.message_versions WHERE message_id = msg('ed', 1);
SELECT last_change FROM chat.channels WHERE id = ch('ed');
-- Editing takes no seq.
SELECT last_seq FROM chat.channels WHERE id = ch('ed');

-- Who may not edit: another member, even an admin; a non-member.
SELECT err($$SELECT chat_edit(msg('ed', 1), 'carol', 'not mine')$$);
SELECT err($$SELECT chat_edit(msg('ed', 1), 'alice', 'admin, still not mine')$$);
SELECT err($$SELECT chat_edit(msg('ed', 1), 'mallory', 'x')$$);

-- The sender deletes: the row stays (seq stays gap-free) with empty content
-- and no attachments; what it held is kept in message_versions.
SELECT chat_delete(msg('ed', 1), 'bob');
SELECT seq, sender_id, content, attachments, deleted_at IS NOT NULL AS deleted, change_seq
FROM chat.messages WHERE id = msg('ed', 1);
SELECT version, content, attachments IS NOT NULL AS has_attachments, action, by_user
FROM chat.message_versions WHERE message_id = msg('ed', 1) ORDER BY version;
-- Deleting again changes nothing.
SELECT chat_delete(msg('ed', 1), 'bob');
SELECT chat_delete(msg('ed', 1), 'alice');
SELECT count(*) AS versions FROM chat.message_versions WHERE message_id = msg('ed', 1);
SELECT change_seq FROM chat.messages WHERE id = msg('ed', 1);
-- An admin deletes another member's message.
SELECT chat_delete(msg('ed', 2), 'alice');
SELECT seq, content, deleted_at IS NOT NULL AS deleted, change_seq FROM chat.messages WHERE id = msg('ed', 2);
SELECT by_user, action FROM chat.message_versions WHERE message_id = msg('ed', 2);

-- History and since return deleted messages as tombstones, in place.
SELECT seq, sender_id, content, deleted_at IS NOT NULL AS deleted, edited_at IS NOT NULL AS edited
FROM chat_history(ch('ed'));
SELECT string_agg(seq::text || ':' || (deleted_at IS NOT NULL)::text, ',') AS since
FROM chat_since(ch('ed'), 0);

-- A deleted message cannot be edited; a reply to it is still possible.
SELECT err($$SELECT chat_edit(msg('ed', 1), 'bob', 'resurrect')$$);
SELECT seq, reply_to = msg('ed', 1) AS replies_to_deleted FROM chat_send(ch('ed'), 'carol', 're: deleted', reply_to => msg('ed', 1));

-- Who may not delete: a plain member, for another's message; a non-member.
SELECT err($$SELECT chat_delete(msg('ed', 3), 'carol')$$);
SELECT err($$SELECT chat_delete(msg('ed', 3), 'mallory')$$);
-- A sender who left the channel can neither edit nor delete.
SELECT chat_remove_member(ch('ed'), 'bob');
SELECT err($$SELECT chat_edit(msg('ed', 3), 'bob', 'x')$$);
SELECT err($$SELECT chat_delete(msg('ed', 3), 'bob')$$);
SELECT chat_add_member(ch('ed'), 'bob');

SELECT count(*) AS versions_before_errors FROM chat.message_versions \gset
SELECT last_change AS change_before_errors FROM chat.channels WHERE id = ch('ed') \gset

-- Bad input.
SELECT err($$SELECT chat_edit(NULL, 'bob', 'x')$$);
SELECT err($$SELECT chat_edit(msg('ed', 3), NULL, 'x')$$);
SELECT err($$SELECT chat_edit(msg('ed', 3), 'bob', NULL)$$);
SELECT err($$SELECT chat_edit(msg('ed', 3), 'bob', '')$$);
SELECT err($$SELECT chat_edit(msg('ed', 3), 'bob', repeat('x', 16385))$$);
SELECT err($$SELECT chat_edit('00000000-0000-0000-0000-000000000000', 'bob', 'x')$$);
SELECT err($$SELECT chat_delete(NULL, 'bob')$$);
SELECT err($$SELECT chat_delete(msg('ed', 3), NULL)$$);
SELECT err($$SELECT chat_delete('00000000-0000-0000-0000-000000000000', 'bob')$$);

-- Nothing was half-written.
SELECT count(*) - :versions_before_errors AS new_versions FROM chat.message_versions;
SELECT last_change - :change_before_errors AS new_changes FROM chat.channels WHERE id = ch('ed');
SELECT content AS content_3 FROM chat.messages WHERE id = msg('ed', 3);
