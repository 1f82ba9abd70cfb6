/*
 * clients.mjs: ChatClient instances for the tests, on the `ws` package,
 * with fast reconnects, each one recording what it saw.
 */
import WebSocket from 'ws';

import {ChatClient} from '../../clients/js/chat.js';
import {token, waitFor, wsUrl} from './harness.mjs';

const live = new Set();

/* memoryStorage is a Storage-like adapter kept in a Map (a "browser profile"). */
export function memoryStorage() {
	const m = new Map();

	return {
		getItem: (k) => (m.has(k) ? m.get(k) : null),
		setItem: (k, v) => void m.set(k, String(v)),
		removeItem: (k) => void m.delete(k),
		map: m,
	};
}

/*
 * client makes a ChatClient for user (token minted once unless opts.token
 * says otherwise) and records its states, messages and errors.
 */
export async function client(user, opts = {}) {
	const tok = opts.token ?? await token(user);
	const c = new ChatClient({
		url: wsUrl(),
		WebSocket,
		reconnect: {minDelayMs: 50, maxDelayMs: 400},
		...opts,
		token: tok,
	});

	c.seen = {states: [c.state], messages: [], errors: [], disconnects: [], frames: []};
	c.on('frame', (f) => c.seen.frames.push(f));
	c.on('state', (s) => c.seen.states.push(s));
	c.on('message', (m) => c.seen.messages.push(m));
	c.on('error', (e) => c.seen.errors.push(e));
	c.on('disconnect', (d) => c.seen.disconnects.push(d));
	live.add(c);
	return c;
}

/* open makes a client and waits until it is open. */
export async function open(user, opts = {}) {
	const c = await client(user, opts);

	await waitFor(() => c.state === 'open', {what: `${user} open`});
	return c;
}

export function closeAll() {
	for (const c of live)
		c.close();
	live.clear();
}

/* received lists the messages c got as events in channelId. */
export const received = (c, channelId) => c.seen.messages.filter((m) => m.channelId === channelId);

/*
 * assertExactlyOnceInOrder checks that msgs hold each of contents exactly
 * once, in that order, with consecutive seqs.
 */
export function checkStream(msgs, contents) {
	const got = msgs.map((m) => m.content);
	const problems = [];
	const count = new Map();

	for (const g of got)
		count.set(g, (count.get(g) || 0) + 1);
	for (const c of contents)
		if (count.get(c) !== 1)
			problems.push(`${c} x${count.get(c) || 0}`);
	for (let i = 1; i < msgs.length; i++)
		if (msgs[i].seq !== msgs[i - 1].seq + 1)
			problems.push(`seq ${msgs[i - 1].seq} then ${msgs[i].seq}`);
	if (problems.length === 0 && got.join('\n') !== contents.join('\n'))
		problems.push('out of order');
	return problems.slice(0, 10);
}

/*
 * wireProblems checks the message frames c's connections carried for
 * channelId (every frame, across reconnects, before the client merged
 * them): each seq must come after every seq already on the wire (as a
 * message or as the ack of a new send), and, for a receiver that sends
 * nothing there, right after it.  Returns the problems found.
 */
export function wireProblems(c, channelId, {from = 0} = {}) {
	let last = from;
	const problems = [];

	for (const f of c.seen.frames) {
		if (f.type === 'ack' && f.channelId === channelId && !f.duplicate)
			last = Math.max(last, f.seq);
		if (f.type !== 'message' || f.message.channelId !== channelId)
			continue;
		const seq = f.message.seq;

		if (seq <= last)
			problems.push(`repeat: ${seq} after ${last}`);
		else if (seq !== last + 1)
			problems.push(`gap: ${seq} after ${last}`);
		last = Math.max(last, seq);
	}
	return problems.slice(0, 10);
}

/* wireMessages lists the seqs of the message frames c received in channelId. */
export const wireMessages = (c, channelId) => c.seen.frames
	.filter((f) => f.type === 'message' && f.message.channelId === channelId).map((f) => f.message.seq);
