--
-- chat_search: full-text search over the user's channels, newest first,
-- keyset-paged, highlighted; never a deleted message, never a channel the
-- user is not (or no longer) a member of.
--
\set SHOW_CONTEXT never

SHOW chat.search_config;
INSERT INTO regress_ids VALUES ('s1', chat_create_channel('group', 'dispatch', ARRAY['dina', 'sam', 'tom']));
INSERT INTO regress_ids VALUES ('s2', chat_create_channel('group', 'yard', ARRAY['dina', 'tom']));
INSERT INTO regress_ids VALUES ('s3', chat_create_channel('group', 'secret', ARRAY['tom', 'ulla']));
SELECT seq FROM chat_send(ch('s1'), 'dina', 'Sam, load 7 goes to Leipzig tomorrow');
SELECT seq FROM chat_send(ch('s1'), 'sam', 'Got it: load 7, Leipzig.');
SELECT seq FROM chat_send(ch('s1'), 'dina', 'Load 8 is cancelled');
SELECT seq FROM chat_send(ch('s2'), 'tom', 'Where is load 7? <b>urgent</b> & late');
SELECT seq FROM chat_send(ch('s3'), 'ulla', 'load 7 secret plan');
SELECT seq FROM chat_send(ch('s1'), 'dina', 'Straße gesperrt, Umleitung über Köln');
SELECT seq FROM chat_send(ch('s1'), 'sam', 'Груз 7 доставлен');

-- Newest first, over dina's channels only (never "secret"), with the match
-- highlighted in HTML-escaped text.
SELECT i.name AS channel, s.seq, s.sender_id, s.headline
FROM chat_search('dina', 'load 7') WITH ORDINALITY AS s JOIN regress_ids i ON i.id = s.channel_id
ORDER BY s.ordinality;
-- One channel; websearch syntax: a phrase, OR, and a negation.
SELECT seq, content FROM chat_search('dina', 'load', channel => ch('s1'));
SELECT seq, content FROM chat_search('dina', '"load 8" or leipzig');
SELECT seq, content FROM chat_search('dina', 'load -leipzig', channel => ch('s1'));
-- simple: no stemming and no stop words, so every language is found.
SELECT seq, content FROM chat_search('dina', 'köln');
SELECT seq, content FROM chat_search('dina', 'груз');
SELECT seq, content FROM chat_search('dina', 'straße');

-- Keyset paging: before is the message_id of the last row of a page.
SELECT seq FROM chat_search('dina', 'load', max => 2);
SELECT seq FROM chat_search('dina', 'load', max => 2,
	before => (SELECT message_id FROM chat_search('dina', 'load', max => 2) OFFSET 1));
SELECT count(*) AS past_the_oldest FROM chat_search('dina', 'load',
	before => (SELECT message_id FROM chat_search('dina', 'load') ORDER BY created_at LIMIT 1));
SELECT err($$SELECT * FROM chat_search('dina', 'load', before => '00000000-0000-0000-0000-000000000000')$$);

-- An edited message is found by its current text only; a deleted one never.
SELECT content FROM chat_edit((SELECT message_id FROM chat_search('dina', 'cancelled')), 'dina', 'Load 8 is postponed');
SELECT count(*) AS cancelled FROM chat_search('dina', 'cancelled');
SELECT seq, content, edited_at IS NOT NULL AS edited FROM chat_search('dina', 'postponed');
SELECT chat_delete((SELECT message_id FROM chat_search('dina', 'postponed')), 'dina');
SELECT count(*) AS postponed FROM chat_search('dina', 'postponed');

-- A user who left a channel finds nothing of it any more, neither over all
-- channels nor by naming it.
SELECT count(*) AS tom_in_secret FROM chat_search('tom', 'secret');
SELECT chat_remove_member(ch('s3'), 'tom');
SELECT count(*) AS tom_in_secret FROM chat_search('tom', 'secret');
SELECT err($$SELECT * FROM chat_search('tom', 'secret', channel => ch('s3'))$$);
-- A user in no channel finds nothing.
SELECT count(*) FROM chat_search('nobody', 'load');

-- The GIN index serves the search (on Citus, on every shard: the plan
-- names the shard's copy of the index).
CREATE FUNCTION plan_uses(query text, index text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	line text;
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
		IF line LIKE '%Index Scan on ' || index || '%' THEN
			RETURN true;
		END IF;
	END LOOP;
	RETURN false;
END
$$;
SET enable_seqscan = off;
SELECT plan_uses($$SELECT m.id FROM chat.messages m WHERE to_tsvector('simple'::regconfig, m.content) @@ websearch_to_tsquery('simple', 'load')$$,
				 'messages_search_idx') AS uses_search_index;
RESET enable_seqscan;
DROP FUNCTION plan_uses(text, text);

-- Errors.
SELECT err($$SELECT * FROM chat_search(NULL, 'x')$$);
SELECT err($$SELECT * FROM chat_search('dina', NULL)$$);
SELECT err($$SELECT * FROM chat_search('dina', '  ')$$);
SELECT err($$SELECT * FROM chat_search('dina', '&!')$$);
SELECT err($$SELECT * FROM chat_search('dina', 'x', max => 0)$$);
SELECT err($$SELECT * FROM chat_search('dina', 'x', max => 101)$$);
SELECT err($$SELECT * FROM chat_search('dina', repeat('x ', 501))$$);
SELECT err($$SELECT * FROM chat_search('dina', 'x', channel => '00000000-0000-0000-0000-000000000000')$$);
SELECT err($$SELECT * FROM chat_search('ulla', 'x', channel => ch('s1'))$$);

-- chat_app may search.
SET ROLE chat_app;
SELECT count(*) FROM chat_search('sam', 'leipzig');
RESET ROLE;
