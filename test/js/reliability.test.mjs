/*
 * reliability.test.mjs: the client never loses, repeats or reorders a
 * message: connections killed in the middle of bursts of sends (the TCP
 * socket destroyed; the worker stopped and restarted), a connection that
 * goes silent, a long absence synced page by page, an outbox that outlives
 * the client, tokens that expire.  The application must see every message
 * once and in order, and the wire must carry no repeated message frame
 * (the client resumes: docs/protocol.md, "Resuming without repeats").
 */
import assert from 'node:assert/strict';
import {after, before, test} from 'node:test';

import WebSocket from 'ws';

import {checkStream, client, closeAll, memoryStorage, open, received, wireMessages, wireProblems} from './clients.mjs';
import {channel, killWorker, lit, sql, token, users, waitFor, waitReady} from './harness.mjs';
import {startProxy} from './proxy.mjs';

before(() => waitReady());

/* this suite's server allows 200 sends per second, 50 at once (test/js/run) */
const RATE = {rateLimit: {perSecond: 180, burst: 40}};
const rateRefusals = (c) => c.seen.frames.filter((f) => f.type === 'error' && f.code === 'rate_limited').length;
after(() => closeAll());

const yieldToIo = () => new Promise((r) => setImmediate(r));

/* killTcp destroys c's TCP socket (once c is connected) without a close frame. */
async function killTcp(c) {
	await waitFor(() => c.state === 'open', {what: `${c.userId} open before the kill`});
	const inFlight = c.outbox.length;

	c.socket._socket.destroy();
	return inFlight;
}

/*
 * burst sends n messages from sender, letting I/O run every few sends, and
 * calls disrupt(i) before send i; returns the contents in send order.
 */
async function burst(sender, ch, n, disrupt) {
	const contents = [];
	const acks = [];

	for (let i = 0; i < n; i++) {
		await disrupt(i);
		const text = `m${String(i).padStart(4, '0')}`;

		contents.push(text);
		acks.push(sender.send(ch, text));
		if (i % 5 === 4)
			await yieldToIo();
	}
	return {contents, acks};
}

async function checkDelivered(ch, sender, receivers, contents, acks) {
	const n = contents.length;

	await waitFor(() => sender.outbox.length === 0, {timeout: 30000, what: 'the outbox to drain'});
	const stored = await Promise.all(acks);

	assert.deepEqual(stored.map((m) => m.content), contents, 'every send resolved with its own message');
	for (const r of receivers)
		await waitFor(() => received(r, ch).length >= n, {timeout: 30000,
			what: `${r.userId} to get ${n} messages (has ${received(r, ch).length})`});
	for (const r of receivers) {
		assert.deepEqual(checkStream(received(r, ch), contents), [], `${r.userId}: exactly once, in order`);
		assert.deepEqual(r.channel(ch).messages.map((m) => m.content), contents, `${r.userId}: channel state`);
		assert.deepEqual(wireProblems(r, ch), [], `${r.userId}: no repeated frame on the wire`);
		assert.equal(wireMessages(r, ch).length, n, `${r.userId}: one message frame per message`);
	}
	assert.deepEqual(wireProblems(sender, ch), [], 'sender: no repeated frame on the wire');
	assert.deepEqual(sender.channel(ch).messages.map((m) => m.content), contents, 'sender: channel state');
	assert.deepEqual(sender.channel(ch).messages.map((m) => m.seq), contents.map((_, i) => i + 1));
	const db = await sql(`SELECT count(*) || ' ' || count(DISTINCT client_id) || ' ' || max(seq)
		FROM chat.messages WHERE channel_id = ${lit(ch)}`);

	assert.equal(db, `${n} ${n} ${n}`, 'the table holds each message once');
}

test('TCP connections destroyed mid-burst: every message exactly once, in order; the outbox drains', async () => {
	const [a, b, c] = users('alex', 'sam', 'kim');
	const ch = await channel('group', 'burst', [a, b, c]);
	const ca = await open(a, RATE);
	const cb = await open(b);
	const cc = await open(c);
	const kills = [];
	const {contents, acks} = await burst(ca, ch, 300, async (i) => {
		/* the sender, with sends on the wire and in the server's batch */
		if (i === 60 || i === 170)
			kills.push(await killTcp(ca));
		if (i === 110 || i === 230)
			await killTcp(cb);	/* a receiver */
	});

	assert.ok(kills.every((k) => k > 0), `sends were in flight at each kill (${kills})`);
	await checkDelivered(ch, ca, [cb, cc], contents, acks);
	assert.ok(ca.seen.disconnects.length >= 2 && cb.seen.disconnects.length >= 2, 'both reconnected');
	assert.equal(cc.seen.disconnects.length, 0);
	assert.equal(rateRefusals(ca), 0, 'paced under the server rate limit');
});

test('the worker stopped (SIGTERM) and restarted mid-burst: every message exactly once, in order', async () => {
	const [a, b] = users('alex', 'sam');
	const ch = await channel('direct', null, [a, b]);
	const ca = await open(a, RATE);
	const cb = await open(b);
	let restarted = null;
	const {contents, acks} = await burst(ca, ch, 200, async (i) => {
		if (i === 80)
			restarted = killWorker();	/* keep sending while it is down */
	});

	await restarted;
	await checkDelivered(ch, ca, [cb], contents, acks);
	/* the idle receiver reads the close frame; the busy sender may see a reset */
	assert.equal(cb.seen.disconnects[0].code, 1001, 'the worker said it was going away');
	assert.ok(ca.seen.disconnects.length >= 1);
	assert.equal(ca.state, 'open');
});

test('sends refused for the rate limit are held and sent again: each exactly once, the outbox drains', async () => {
	const [a, b] = users('alex', 'sam');
	const ch = await channel('direct', null, [a, b]);
	const ca = await open(a, {rateLimit: false});	/* a client that does not pace itself */
	const cb = await open(b);
	const {contents, acks} = await burst(ca, ch, 150, async () => {});

	await waitFor(() => ca.outbox.length === 0, {timeout: 30000, what: 'the outbox to drain'});
	assert.ok(rateRefusals(ca) > 0, 'the server refused some');
	await Promise.all(acks);
	await waitFor(() => received(cb, ch).length === 150, {what: 'all 150 at b'});
	const got = received(cb, ch);

	assert.deepEqual(checkStream(got, [...got.map((m) => m.content)]), [], 'consecutive seqs');
	assert.deepEqual(got.map((m) => m.content).sort(), contents, 'each exactly once');
	assert.equal(await sql(`SELECT count(*) FROM chat.messages WHERE channel_id = ${lit(ch)}`), '150');
});

test('a silent connection is detected by missed heartbeats and replaced; nothing sent meanwhile is lost', async () => {
	const [a, b] = users('alex', 'sam');
	const ch = await channel('direct', null, [a, b]);
	const proxy = await startProxy(Number(process.env.CHAT_PORT));

	try {
		const ca = await open(a, {url: `ws://127.0.0.1:${proxy.port}/ws`});
		const cb = await open(b);
		const first = ca.connectionId;

		assert.equal(proxy.freeze(), 1);
		const t0 = Date.now();

		await cb.send(ch, 'sent while alex was cut off');
		await waitFor(() => ca.seen.disconnects.length === 1, {timeout: 10000, what: 'a dead connection noticed'});
		assert.equal(ca.seen.disconnects[0].reason, 'heartbeat missed');
		const took = Date.now() - t0;

		assert.ok(took < 4000, `noticed after ${took} ms (heartbeat 500 ms)`);
		await waitFor(() => ca.state === 'open' && ca.connectionId !== first, {what: 'a new connection'});
		await waitFor(() => received(ca, ch).length === 1, {what: 'the missed message'});
		await cb.send(ch, 'and after');
		await waitFor(() => received(ca, ch).length === 2, {what: 'live delivery again'});
		assert.deepEqual(checkStream(received(ca, ch), ['sent while alex was cut off', 'and after']), []);
	} finally {
		proxy.close();
	}
});

test('a long absence is synced page by page (hasMore) from the stored position, once and in order', async () => {
	const [a, b] = users('alex', 'sam');
	const ch = await channel('group', 'backlog', [a, b]);
	const storage = memoryStorage();
	const first = await open(b, {storage});
	const ca = await open(a);

	await ca.send(ch, 'seen before leaving');
	await waitFor(() => received(first, ch).length === 1, {what: 'first delivery'});
	first.close();	/* the page is closed; its storage keeps the position */

	const n = 2300;

	await sql(`SELECT count(chat_send(${lit(ch)}, ${lit(a)}, 'b' || lpad(i::text, 4, '0')))
		FROM generate_series(1, ${n}) i`);
	const again = await client(b, {storage});
	let synced = 0;

	again.on('frame', (f) => {
		if (f.type === 'synced' && f.channelId === ch)
			synced++;
	});
	await waitFor(() => again.state === 'open', {what: 'open'});
	const live = ['live 1', 'live 2'];

	for (const t of live)
		await ca.send(ch, t);
	const want = Array.from({length: n}, (_, i) => 'b' + String(i + 1).padStart(4, '0')).concat(live);

	await waitFor(() => received(again, ch).length >= want.length, {timeout: 30000,
		what: `the backlog (${received(again, ch).length} of ${want.length})`});
	assert.deepEqual(checkStream(received(again, ch), want), []);
	assert.equal(received(again, ch)[0].seq, 2, 'resumed right after the stored position');
	assert.deepEqual(wireProblems(again, ch, {from: 1}), [], 'no repeated frame on the wire');
	assert.ok(synced >= 3, `paged through hasMore (${synced} synced frames)`);
	assert.equal(again.channel(ch).unread, 1 + n + live.length, 'nothing was marked read');
});

test('without resume (a 1.0 server), live messages that overtake the sync wait for it: the gap is filled, then all in order', async () => {
	const [a, b] = users('alex', 'sam');
	const ch = await channel('group', 'race', [a, b]);
	const storage = memoryStorage();
	const first = await open(b, {storage});
	const ca = await open(a);

	await ca.send(ch, 'before');
	await waitFor(() => received(first, ch).length === 1, {what: 'first delivery'});
	first.close();
	for (const t of ['missed 1', 'missed 2', 'missed 3'])
		await ca.send(ch, t);

	/* a WebSocket that keeps the client's sync frames back until released */
	const held = [];
	let holding = true;
	class HoldSync extends WebSocket {
		send(data, ...rest) {
			if (holding && String(data).includes('"type":"sync"'))
				held.push(() => super.send(data, ...rest));
			else
				super.send(data, ...rest);
		}
	}
	const again = await client(b, {storage, WebSocket: HoldSync, resume: false});

	await waitFor(() => again.state === 'open' && held.length === 1, {what: 'ready, with the sync held back'});
	await ca.send(ch, 'live');
	await waitFor(() => again.channel(ch).messages.some((m) => m.content === 'live'), {what: 'the live message'});
	assert.equal(received(again, ch).length, 0, 'nothing is delivered across the gap');
	assert.equal(again.channel(ch).lastSeq, 1);
	holding = false;
	held.shift()();
	await waitFor(() => received(again, ch).length === 4, {what: 'the gap filled'});
	assert.deepEqual(checkStream(received(again, ch), ['missed 1', 'missed 2', 'missed 3', 'live']), []);
	assert.deepEqual(again.channel(ch).messages.map((m) => m.seq), [2, 3, 4, 5]);
});

test('resuming, a live message waits on the server for the sync: the wire carries the missed ones, then it, once each', async () => {
	const [a, b] = users('alex', 'sam');
	const ch = await channel('group', 'resume', [a, b]);
	const storage = memoryStorage();
	const first = await open(b, {storage});
	const ca = await open(a);

	await ca.send(ch, 'before');
	await waitFor(() => received(first, ch).length === 1, {what: 'first delivery'});
	first.close();	/* a reload: the next client starts from storage */
	for (const t of ['missed 1', 'missed 2', 'missed 3'])
		await ca.send(ch, t);

	/* the client's sync is kept back until a live message has been stored */
	const held = [];
	let holding = true;
	class HoldSync extends WebSocket {
		send(data, ...rest) {
			if (holding && String(data).includes('"type":"sync"'))
				held.push(() => super.send(data, ...rest));
			else
				super.send(data, ...rest);
		}
	}
	const again = await client(b, {storage, WebSocket: HoldSync});

	await waitFor(() => again.state === 'open' && held.length === 1, {what: 'ready, with the sync held back'});
	await ca.send(ch, 'live');	/* acked: on a 1.0 server b would have it on the wire now */
	holding = false;
	held.shift()();
	await waitFor(() => received(again, ch).length === 4, {what: 'the missed ones and the live one'});
	assert.deepEqual(checkStream(received(again, ch), ['missed 1', 'missed 2', 'missed 3', 'live']), []);
	assert.deepEqual(wireMessages(again, ch), [2, 3, 4, 5], 'the wire: in order, once each');
	assert.equal(again.channel(ch).lastSeq, 5);
	assert.equal(again.seen.frames.find((f) => f.type === 'ready').resume, true, 'the server resumes');
});

test('a reload resumes from the position saved on pagehide: no message frame twice', async () => {
	const [a, b] = users('alex', 'sam');
	const ch = await channel('group', 'reload', [a, b]);
	const storage = memoryStorage();
	let writes = 0;
	const counted = {...storage, setItem: (k, v) => {
		writes++;
		storage.setItem(k, v);
	}};
	/* a browser window's events, which Node does not have */
	const win = new EventTarget();

	globalThis.addEventListener = win.addEventListener.bind(win);
	globalThis.removeEventListener = win.removeEventListener.bind(win);
	try {
		const page = await open(b, {storage: counted});
		const ca = await open(a);

		for (let i = 1; i <= 5; i++)
			await ca.send(ch, `seen ${i}`);
		await waitFor(() => received(page, ch).length === 5, {what: 'five seen'});
		const before = writes;

		win.dispatchEvent(new Event('pagehide'));
		assert.equal(writes, before + 1, 'pagehide saved at once');
		assert.equal(JSON.parse(storage.getItem(`chat:${b}`)).channels.find((c) => c.id === ch).lastSeq, 5);
		page.close();
		await ca.send(ch, 'while reloading');
		const again = await open(b, {storage});

		await waitFor(() => received(again, ch).length === 1, {what: 'the one missed'});
		await ca.send(ch, 'after');
		await waitFor(() => received(again, ch).length === 2, {what: 'live again'});
		assert.deepEqual(wireMessages(again, ch), [6, 7], 'nothing the page had seen came again');
		assert.deepEqual(checkStream(received(again, ch), ['while reloading', 'after']), []);
	} finally {
		delete globalThis.addEventListener;
		delete globalThis.removeEventListener;
	}
});

test('the outbox outlives the client: restored from storage and sent with the same clientId', async () => {
	const [a, b] = users('alex', 'sam');
	const ch = await channel('direct', null, [a, b]);
	const storage = memoryStorage();
	const cb = await open(b);

	/* a client that cannot reach the server queues its sends */
	const offline = await client(a, {storage, url: 'ws://127.0.0.1:9/ws'});
	const queued = ['one', 'two', 'three'].map((t) => {
		const p = offline.send(ch, t);

		p.catch(() => {});
		return p;
	});

	assert.equal(queued.length, 3);
	assert.equal(offline.outbox.length, 3);
	const lost = offline.outbox[0];

	offline.close();
	/* the first one did reach the server; only its ack was lost */
	await sql(`SELECT chat_send(${lit(ch)}, ${lit(a)}, ${lit(lost.content)}, ${lit(lost.clientId)})`);
	await waitFor(() => received(cb, ch).length === 1, {what: 'the first copy'});

	const acks = [];
	const ca = await client(a, {storage});

	ca.on('ack', (e) => acks.push(e));
	await waitFor(() => ca.state === 'open' && ca.outbox.length === 0, {what: 'the restored outbox to drain'});
	await waitFor(() => received(cb, ch).length === 3, {what: 'all three at b'});
	assert.deepEqual(checkStream(received(cb, ch), ['one', 'two', 'three']), []);
	assert.deepEqual(acks.map((e) => [e.message.content, e.duplicate]),
		[['one', true], ['two', false], ['three', false]]);
	assert.equal(await sql(`SELECT count(*) FROM chat.messages WHERE channel_id = ${lit(ch)}`), '3');
	assert.equal(JSON.parse(storage.getItem(`chat:${a}`)).outbox.length, 0);
});

test('a token function is asked again and the token refreshed on the live connection', async () => {
	const [a, b] = users('alex', 'sam');
	const ch = await channel('direct', null, [a, b]);
	let calls = 0;
	const ca = await open(a, {token: () => {
		calls++;
		return token(a, 3);
	}});
	const cb = await open(b);
	const conn = ca.connectionId;
	const firstExpiry = Date.now() + 3000;

	await waitFor(() => calls >= 2, {what: 'a refresh'});
	/* past the first token's expiry (no leeway in this suite) */
	await waitFor(() => Date.now() > firstExpiry + 1500, {timeout: 10000, interval: 100, what: 'the first expiry'});
	await cb.send(ch, 'still there?');
	await waitFor(() => received(ca, ch).length === 1, {what: 'delivery'});
	assert.equal(ca.connectionId, conn, 'the same connection');
	assert.equal(ca.seen.disconnects.length, 0);
});

test('a plain token that expires on a live connection ends the client with token_expired', async () => {
	const [a] = users('alex');

	await channel('group', 'expiry', [a]);
	const ca = await open(a, {token: await token(a, 2)});

	await waitFor(() => ca.state === 'closed', {timeout: 10000, what: 'closed'});
	assert.equal(ca.seen.disconnects[0].code, 4001);
	assert.equal(ca.seen.errors.at(-1).code, 'token_expired');
});
