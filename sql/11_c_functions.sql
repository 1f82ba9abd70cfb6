-- chat_mint_token and chat_online, the functions written in C.
CREATE EXTENSION IF NOT EXISTS chat;

-- A token has three base64url parts; its payload names the user.
SELECT t ~ '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' AS three_parts,
       convert_from(decode(rpad(translate(split_part(t, '.', 2), '-_', '+/'),
                           (length(split_part(t, '.', 2)) + 3) / 4 * 4, '='),
                           'base64'), 'UTF8')::jsonb ->> 'sub' AS sub
FROM chat_mint_token('dispatcher-7') AS t;

-- exp - iat is the ttl.
SELECT (p ->> 'exp')::bigint - (p ->> 'iat')::bigint AS lifetime_s
FROM (SELECT convert_from(decode(rpad(translate(split_part(t, '.', 2), '-_', '+/'),
                                 (length(split_part(t, '.', 2)) + 3) / 4 * 4, '='),
                                 'base64'), 'UTF8')::jsonb AS p
      FROM chat_mint_token('bob', '90 seconds') AS t) AS x;

-- Bad input.
\set VERBOSITY terse
SELECT chat_mint_token('', '1 hour');
SELECT chat_mint_token(repeat('x', 201), '1 hour');
SELECT chat_mint_token('bob', '0 seconds');
SELECT chat_mint_token('bob', '-1 hour');
SELECT chat_mint_token('bob', '2 years');
SELECT chat_mint_token(NULL) IS NULL AS null_in_null_out;

-- Only superusers may mint: it is a way to act as anyone.
CREATE ROLE regress_minter;
GRANT EXECUTE ON FUNCTION chat_mint_token(text, interval) TO regress_minter;
SET ROLE regress_minter;
SELECT chat_mint_token('bob');
RESET ROLE;
DROP OWNED BY regress_minter;
DROP ROLE regress_minter;

-- chat_online: nobody is connected in this test, so nobody is online;
-- an unknown channel is an error, as everywhere in the API.
SELECT count(*) AS online FROM chat_online(chat_create_channel('group', 'c-online', ARRAY['alice', 'bob']));
SELECT count(*) AS online FROM chat_online('00000000-0000-0000-0000-000000000000');
-- chat_app may call it.
SELECT has_function_privilege('chat_app', 'chat_online(uuid)', 'EXECUTE') AS app_may_call,
       has_function_privilege('chat_app', 'chat_mint_token(text, interval)', 'EXECUTE') AS app_may_mint;
