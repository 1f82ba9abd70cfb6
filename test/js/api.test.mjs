/*
 * api.test.mjs: the client's API against the real server: states, send
 * and ack, duplicates, history paging, typing, read, edit/delete, presence,
 * membership events and errors.
 */
import assert from 'node:assert/strict';
import {readFileSync} from 'node:fs';
import {after, before, test} from 'node:test';

import {ChatError} from '../../clients/js/chat.js';
import {checkStream, client, closeAll, open, received} from './clients.mjs';
import {channel, httpGet, lit, nextEvent, sql, users, waitFor, waitReady} from './harness.mjs';

before(() => waitReady());
after(() => closeAll());

test('connects: states connecting then open, channels from ready', async () => {
	const [a, b] = users('alex', 'sam');
	const ch = await channel('group', 'dispatch', [a, b]);
	const c = await client(a);

	await waitFor(() => c.state === 'open');
	assert.deepEqual(c.seen.states, ['connecting', 'open']);
	assert.equal(c.userId, a);
	const info = c.channel(ch);

	assert.equal(info.type, 'group');
	assert.equal(info.name, 'dispatch');
	assert.equal(info.lastSeq, 0);
	assert.deepEqual(info.messages, []);
	c.close();
	assert.equal(c.state, 'closed');
});

test('send: ack resolves, the other member gets it, outbox drains, a repeated clientId is stored once', async () => {
	const [a, b] = users('alex', 'sam');
	const ch = await channel('direct', null, [a, b]);
	const ca = await open(a);
	const cb = await open(b);
	const p = ca.send(ch, 'hello');

	assert.equal(ca.outbox.length, 1);
	assert.equal(ca.channel(ch).pending.length, 1);
	const m = await p;

	assert.equal(m.seq, 1);
	assert.equal(m.senderId, a);
	assert.equal(ca.outbox.length, 0);
	await waitFor(() => received(cb, ch).length === 1, {what: 'delivery to b'});
	assert.equal(received(cb, ch)[0].clientId, m.clientId);

	const again = await ca.send(ch, 'hello', {clientId: m.clientId});

	assert.equal(again.seq, 1, 'the repeat is answered with the first message');
	await ca.send(ch, 'second');
	await waitFor(() => received(cb, ch).length === 2, {what: 'second delivery'});
	assert.deepEqual(checkStream(received(cb, ch), ['hello', 'second']), []);
	assert.equal(await sql(`SELECT count(*) FROM chat.messages WHERE channel_id = ${lit(ch)}`), '2');
	assert.deepEqual(ca.channel(ch).messages.map((x) => x.content), ['hello', 'second']);
});

test('history pages back to the first message, merged by seq, without message events', async () => {
	const [a] = users('alex');
	const ch = await channel('group', 'log', [a]);

	await sql(`SELECT count(chat_send(${lit(ch)}, ${lit(a)}, 'm' || i)) FROM generate_series(1, 120) i`);
	const c = await open(a);
	const st = c.channel(ch);

	assert.equal(st.lastSeq, 120);
	const pages = [];

	while (st.hasMoreHistory)
		pages.push((await c.history(ch, {limit: 50})).messages.length);
	assert.deepEqual(pages, [50, 50, 20]);
	assert.deepEqual(st.messages.map((m) => m.seq), Array.from({length: 120}, (_, i) => i + 1));
	assert.equal(st.messages[0].content, 'm1');
	assert.equal(c.seen.messages.length, 0, 'history is not news');
	const none = await c.history(ch);

	assert.equal(none.messages.length, 0);
});

test('typing: debounced to the server rules, shown to the others, then stopped', async () => {
	const [a, b] = users('alex', 'sam');
	const ch = await channel('direct', null, [a, b]);
	const ca = await open(a);
	const cb = await open(b);
	const events = [];

	cb.on('typing', (e) => events.push(['typing', e.userId]));
	cb.on('typing_stopped', (e) => events.push(['stopped', e.userId]));
	const sent = [];

	for (let i = 0; i < 10; i++)
		sent.push(ca.typing(ch));
	assert.deepEqual(sent, [true, false, false, false, false, false, false, false, false, false]);
	await nextEvent(cb, 'typing');
	assert.deepEqual(cb.channel(ch).typing, [a]);
	await nextEvent(cb, 'typing_stopped');
	assert.deepEqual(cb.channel(ch).typing, []);
	assert.deepEqual(events, [['typing', a], ['stopped', a]]);

	/* a message ends the indicator at once */
	ca.typing(ch);
	await waitFor(() => cb.channel(ch).typing.length === 1, {what: 'typing again'});
	const stopped = nextEvent(cb, 'typing_stopped');

	await ca.send(ch, 'done typing');
	await stopped;
	assert.deepEqual(cb.channel(ch).typing, []);
});

test('read: unread counts, markRead, read events for the other members', async () => {
	const [a, b] = users('alex', 'sam');
	const ch = await channel('direct', null, [a, b]);

	await sql(`SELECT chat_send(${lit(ch)}, ${lit(a)}, 'before b came')`);
	const ca = await open(a);
	const cb = await open(b);

	assert.equal(cb.channel(ch).unread, 1);
	await ca.send(ch, 'one');
	await ca.send(ch, 'two');
	await waitFor(() => cb.channel(ch).unread === 3, {what: 'unread 3'});
	assert.equal(ca.channel(ch).unread, 0, 'own messages are never unread');

	const seen = nextEvent(ca, 'read', (e) => e.userId === b);

	cb.markRead(ch);
	assert.equal(cb.channel(ch).unread, 0);
	const ev = await seen;

	assert.equal(ev.seq, 3);
	assert.equal(ca.channel(ch).readBy[b], 3);
	assert.equal(await sql(`SELECT last_read_seq FROM chat.channel_members WHERE channel_id = ${lit(ch)} AND user_id = ${lit(b)}`), '3');

	cb.close();
	const cb2 = await open(b);

	assert.equal(cb2.channel(ch).unread, 0);
	assert.equal(cb2.channel(ch).lastReadSeq, 3);
});

test('edit and delete: events and state for every member', async () => {
	const [a, b] = users('alex', 'sam');
	const ch = await channel('group', 'ops', [a, b]);
	const ca = await open(a);
	const cb = await open(b);
	const m = await ca.send(ch, 'truck 12 at dock 3');

	await waitFor(() => cb.channel(ch).messages.length === 1, {what: 'delivery'});
	const upd = nextEvent(cb, 'message_updated');
	const edited = await ca.edit(m.id, 'truck 12 at dock 4');

	assert.equal(edited.content, 'truck 12 at dock 4');
	assert.equal((await upd).content, 'truck 12 at dock 4');
	assert.equal(cb.channel(ch).messages[0].content, 'truck 12 at dock 4');
	assert.ok(cb.channel(ch).messages[0].editedAt);

	await assert.rejects(cb.edit(m.id, 'not mine'), (e) => e instanceof ChatError && e.code === 'forbidden');

	const del = nextEvent(cb, 'message_deleted');

	await ca.delete(m.id);
	assert.equal((await del).messageId, m.id);
	assert.ok(cb.channel(ch).messages[0].deletedAt);
	assert.ok(ca.channel(ch).messages[0].deletedAt);
});

test('react and search: the reaction event and the message state for every member, results of the user\'s channels', async () => {
	const [a, b, c] = users('alex', 'sam', 'kim');
	const ch = await channel('group', 'ops', [a, b]);
	const other = await channel('group', 'yard', [c]);
	const ca = await open(a);
	const cb = await open(b);
	const m = await ca.send(ch, 'truck 12 at dock 3, zanzibar route');

	await sql(`SELECT chat_send(${lit(other)}, ${lit(c)}, 'zanzibar elsewhere')`);
	await waitFor(() => cb.channel(ch).messages.length === 1, {what: 'delivery'});
	const ev = nextEvent(ca, 'reaction');
	const mine = await cb.react(m.id, '👍');

	assert.deepEqual(mine, [{emoji: '👍', count: 1, users: [b]}]);
	assert.deepEqual((await ev).reactions, mine);
	assert.deepEqual(ca.channel(ch).messages[0].reactions, mine);
	await waitFor(() => cb.channel(ch).messages[0].reactions, {what: 'own reaction in state'});
	assert.deepEqual(await cb.unreact(m.id, '👍'), []);
	await waitFor(() => !ca.channel(ch).messages[0].reactions, {what: 'reaction removed'});
	await assert.rejects(cb.react(m.id, 'not an emoji'), (e) => e instanceof ChatError && e.code === 'bad_request');

	const {results, hasMore} = await cb.search('zanzibar');

	assert.equal(hasMore, false);
	assert.deepEqual(results.map((r) => [r.channelId, r.seq]), [[ch, 1]]);
	assert.equal(results[0].headline, 'truck 12 at dock 3, <mark>zanzibar</mark> route');
	await assert.rejects(cb.search('zanzibar', {channelId: other}), (e) => e instanceof ChatError && e.code === 'not_member');
});

test('presence: online and offline reach the channel state', async () => {
	const [a, b] = users('alex', 'sam');
	const ch = await channel('direct', null, [a, b]);
	const ca = await open(a);

	assert.deepEqual(ca.channel(ch).online, [], 'online lists the other members');
	const cb = await open(b);

	await waitFor(() => ca.channel(ch).online.includes(b), {what: 'b online at a'});
	assert.deepEqual(cb.channel(ch).online, [a]);
	assert.deepEqual((await ca.presence(ch)).sort(), [a, b].sort());
	cb.close();
	await waitFor(() => !ca.channel(ch).online.includes(b), {what: 'b offline at a'});
});

test('membership: joined and left as SQL changes it', async () => {
	const [a, b] = users('alex', 'sam');
	const ch = await channel('group', 'drivers', [a]);
	const cb = await open(b);

	assert.equal(cb.channel(ch), null);
	const joined = nextEvent(cb, 'joined');

	await sql(`SELECT chat_add_member(${lit(ch)}, ${lit(b)})`);
	assert.equal((await joined).id, ch);
	const ca = await open(a);

	await ca.send(ch, 'welcome');
	await waitFor(() => received(cb, ch).length === 1, {what: 'delivery after join'});
	const left = nextEvent(cb, 'left');

	await sql(`SELECT chat_remove_member(${lit(ch)}, ${lit(b)})`);
	assert.equal((await left).channelId, ch);
	assert.equal(cb.channel(ch), null);
});

test('errors: too_large locally, not_member from the server; nothing stays in the outbox', async () => {
	const [a, b, x] = users('alex', 'sam', 'eve');
	const ch = await channel('direct', null, [a, b]);
	const cx = await open(x);

	await assert.rejects(cx.send(ch, 'let me in'), (e) => e instanceof ChatError && e.code === 'not_member');
	assert.equal(cx.outbox.length, 0);
	await assert.rejects(cx.send(ch, 'x'.repeat(5000)), (e) => e.code === 'too_large');
	await assert.rejects(() => cx.history(ch), (e) => e.code === 'not_member');
	assert.equal(cx.state, 'open', 'errors never close the connection');
});

test('the worker serves this client at /chat.js', async () => {
	const r = await httpGet('/chat.js');

	assert.equal(r.status, 200);
	assert.match(r.headers['content-type'], /javascript/);
	assert.ok(r.body.equals(readFileSync(new URL('../../clients/js/chat.js', import.meta.url))),
		'the served file is clients/js/chat.js as built (run make install after changing it)');
});
