/*
 * page.test.mjs: the demo page in a real browser (Debian's chromium,
 * headless, driven by playwright-core), as two people use it: each in a
 * browser of their own, with a fresh profile.  Every wait is for something
 * on the page, under a deadline.
 */
import assert from 'node:assert/strict';
import {copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {after, before, test} from 'node:test';
import {chromium} from 'playwright-core';

import {channel, env, httpGet, lit, restartCluster, sql, token, waitReady} from '../js/harness.mjs';

const TOP = new URL('../../', import.meta.url).pathname;
const ARTIFACTS = join(TOP, 'test/artifacts/browser');
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
	'--disable-component-update', '--disable-sync', '--no-first-run'];

const people = [];
let fleet, alexSam, alexKim;

/* person opens the page as user in a browser of its own (at channel #hash). */
async function person(user, hash = '') {
	const dir = mkdtempSync(join(tmpdir(), 'chat-chromium-'));
	const ctx = await chromium.launchPersistentContext(dir, {
		executablePath: '/usr/bin/chromium', headless: true, args: ARGS,
		viewport: {width: 1100, height: 680},
	});
	const page = ctx.pages()[0] || await ctx.newPage();
	const p = {user, ctx, page, dir, problems: []};

	page.on('pageerror', (e) => p.problems.push(`page error: ${e.message}`));
	page.on('console', (m) => {
		if (m.type() === 'error' && !/ERR_CONNECTION_REFUSED|WebSocket connection/.test(m.text()))
			p.problems.push(`console: ${m.text()}`);
	});
	people.push(p);
	await page.goto(`http://127.0.0.1:${env.chatPort}/?token=${await token(user)}${hash}`);
	await page.waitForFunction(() => window.chat && window.chat.state === 'open');
	return p;
}

const shot = (p, name) => p.page.screenshot({path: join(ARTIFACTS, `${name}.png`)});

function openChannel(p, title) {
	return p.page.locator('#channels li', {has: p.page.locator('.name', {hasText: new RegExp(`^${title}$`)})}).click();
}

/* bubbles lists the texts of the messages shown, pending ones included. */
const bubbles = (p) => p.page.$$eval('#message-list .msg .bubble', (els) => els.map((e) => e.textContent));

async function say(p, text) {
	await p.page.locator('#input').fill(text);
	await p.page.locator('#send').click();
}

function waitText(p, selector, text, timeout = 20000) {
	return p.page.waitForFunction(([s, t]) => {
		const e = document.querySelector(s);

		return e && e.textContent.includes(t);
	}, [selector, text], {timeout});
}

function waitBubble(p, text, timeout = 20000) {
	return p.page.waitForFunction((t) => [...document.querySelectorAll('#message-list .msg:not(.pending) .bubble')]
		.some((e) => e.textContent === t), text, {timeout});
}

before(async () => {
	mkdirSync(ARTIFACTS, {recursive: true});
	await waitReady();
	fleet = await channel('group', 'fleet', ['alex', 'maria', 'sam', 'kim']);
	alexSam = await channel('direct', null, ['alex', 'sam']);
	alexKim = await channel('direct', null, ['alex', 'kim']);
	await sql(`SELECT chat_send(${lit(fleet)}, 'maria', 'Morning, everyone! Storm warning on the A7 after 14:00.');
		SELECT chat_send(${lit(alexSam)}, 'sam', 'Loading at dock 3 now.')`);
	await sql(`SELECT chat_send(chat_direct_channel('alex', 'kim'), 'kim', 'Traffic jam near exit 21, 30 minutes late.')`);
});

after(async () => {
	for (const p of people) {
		await p.ctx.close().catch(() => {});
		rmSync(p.dir, {recursive: true, force: true});
	}
});

test('the worker serves the page and the client', async () => {
	for (const path of ['/', '/index.html', '/app.js', '/style.css', '/chat.js']) {
		const r = await httpGet(path);

		assert.equal(r.status, 200, path);
	}
	assert.match((await httpGet('/')).headers['content-type'], /text\/html/);
});

test('a page without a token explains where to get one', async () => {
	const p = await person('alex');
	const page = await p.ctx.newPage();

	await page.goto(`http://127.0.0.1:${env.chatPort}/`);
	await page.locator('#no-token').waitFor();
	assert.match(await page.locator('#no-token').textContent(), /make demo/);
	await page.close();
	await p.ctx.close();
	people.splice(people.indexOf(p), 1);
});

test('two people open the page: channels, unread badges, online dots', async () => {
	const alex = await person('alex');

	await waitText(alex, '#channels', 'Sam');
	const names = await alex.page.$$eval('#channels .name', (els) => els.map((e) => e.textContent));

	assert.deepEqual(names, ['# fleet', 'Kim', 'Sam']);
	const kim = alex.page.locator('#channels li', {hasText: 'Kim'});

	assert.equal(await kim.locator('.badge').textContent(), '1');
	assert.equal(await kim.locator('.dot.online').count(), 0);

	const sam = await person('sam');
	const samRow = alex.page.locator('#channels li', {hasText: 'Sam'});

	await samRow.locator('.dot.online').waitFor();
	await shot(alex, '1-alex-sees-sam-online');
	assert.equal(sam.problems.length + alex.problems.length, 0, [...alex.problems, ...sam.problems].join('\n'));
});

test('messages go both ways, with read ticks', async () => {
	const [alex, sam] = people;

	await openChannel(alex, 'Sam');
	await openChannel(sam, 'Alex');
	await waitBubble(alex, 'Loading at dock 3 now.');
	await say(alex, 'Great, ping me when you leave the depot.');
	await waitBubble(sam, 'Great, ping me when you leave the depot.');
	await say(sam, 'Leaving now, ETA Lübeck 11:40.');
	await waitBubble(alex, 'Leaving now, ETA Lübeck 11:40.');
	/* sam's page shows the conversation, so alex's message is read */
	await alex.page.locator('.msg.own .tick.read').first().waitFor();
	assert.deepEqual(await bubbles(alex), await bubbles(sam));
	assert.deepEqual(await bubbles(alex), ['Loading at dock 3 now.', 'Great, ping me when you leave the depot.',
		'Leaving now, ETA Lübeck 11:40.']);
	await shot(sam, '2-sam-conversation');
});

test('"Sam is typing…" appears while Sam types, and goes away', async () => {
	const [alex, sam] = people;

	await sam.page.locator('#input').pressSequentially('traffic is light', {delay: 40});
	await waitText(alex, '#typing', 'Sam is typing…');
	await shot(alex, '3-alex-sees-typing');
	if (process.env.UPDATE_DOCS_SCREENSHOT || !existsSync(join(TOP, 'docs/demo.png')))
		copyFileSync(join(ARTIFACTS, '3-alex-sees-typing.png'), join(TOP, 'docs/demo.png'));
	await alex.page.waitForFunction(() => document.getElementById('typing').textContent === '', null, {timeout: 10000});
	await sam.page.locator('#input').fill('');
});

test('Sam reacts with 👍, Alex sees it live and adds his; Alex searches and finds only his own channels', async () => {
	const [alex, sam] = people;
	const msg = (p, text) => p.page.locator('#message-list .msg', {has: p.page.locator('.bubble', {hasText: text})});
	const target = 'Great, ping me when you leave the depot.';

	await msg(sam, target).locator('.react-add').click();
	await msg(sam, target).locator('.react-choice[data-emoji="👍"]').click();
	await msg(sam, target).locator('.reaction.mine', {hasText: '👍 1'}).waitFor({timeout: 20000});
	await msg(alex, target).locator('.reaction', {hasText: '👍 1'}).waitFor({timeout: 20000});
	/* alex's click on the chip adds his own */
	await msg(alex, target).locator('.reaction', {hasText: '👍 1'}).click();
	await msg(sam, target).locator('.reaction', {hasText: '👍 2'}).waitFor({timeout: 20000});
	await msg(alex, target).locator('.reaction.mine', {hasText: '👍 2'}).waitFor({timeout: 20000});
	await shot(sam, '4-sam-sees-reactions');

	/* a channel alex is not in has the word too: it is never found */
	await sql(`SELECT chat_send(chat_create_channel('group', 'yard', ARRAY['maria', 'kim']), 'maria', 'Lübeck yard is closed')`);
	await alex.page.locator('#search-input').fill('lübeck');
	await alex.page.locator('#search-input').press('Enter');
	await alex.page.locator('#search-results .search-hit').first().waitFor({timeout: 20000});
	const hits = await alex.page.$$eval('#search-results .search-hit', (els) => els.map((e) => ({
		where: e.querySelector('.where').textContent,
		text: e.querySelector('.text').textContent,
		marked: [...e.querySelectorAll('mark')].map((m) => m.textContent),
	})));

	assert.equal(hits.length, 1, JSON.stringify(hits));
	assert.equal(hits[0].text, 'Leaving now, ETA Lübeck 11:40.');
	assert.deepEqual(hits[0].marked, ['Lübeck']);
	assert.match(hits[0].where, /^Sam · Sam · /);
	await shot(alex, '5-alex-searches');
	await openChannel(alex, '# fleet');
	await alex.page.locator('#search-results .search-hit').first().click();
	await waitText(alex, '#conv-title', 'Sam');
	assert.equal(alex.problems.length + sam.problems.length, 0, [...alex.problems, ...sam.problems].join('\n'));
});

test('unread badges count live messages; a fresh page loads history as it scrolls up', async () => {
	const [alex] = people;

	await sql(`SELECT count(chat_send(${lit(fleet)}, 'maria', 'update ' || i)) FROM generate_series(1, 120) i`);
	/* alex read the fleet channel when the page opened on it */
	await alex.page.locator('#channels li', {hasText: 'fleet'}).locator('.badge', {hasText: '120'}).waitFor();

	const kim = await person('kim', `#${alexKim}`);	/* the page opens on the DM */

	await kim.page.locator('#channels li', {hasText: 'fleet'}).locator('.badge', {hasText: '121'}).waitFor();
	await openChannel(kim, '# fleet');
	await waitBubble(kim, 'update 120');
	const first = (await bubbles(kim)).length;

	assert.ok(first < 121, `one page at first (${first})`);
	const box = kim.page.locator('#messages');

	for (let i = 0; i < 20; i++) {
		if ((await kim.page.locator('#history-status').textContent()).includes('beginning'))
			break;
		const shown = (await bubbles(kim)).length;

		await box.evaluate((e) => {
			e.scrollTop = 0;
		});
		await kim.page.waitForFunction((n) => document.querySelectorAll('#message-list .msg').length > n ||
			document.getElementById('history-status').textContent.includes('beginning'), shown, {timeout: 10000});
	}
	const all = await bubbles(kim);

	assert.equal(all[0], 'Morning, everyone! Storm warning on the A7 after 14:00.');
	assert.equal(all.length, 121);
	assert.equal(new Set(all).size, 121, 'no message twice');
	await shot(kim, '4-kim-history');
	await kim.page.locator('#channels li', {hasText: 'fleet'}).locator('.badge').waitFor({state: 'detached'});
	await kim.ctx.close();
	people.splice(people.indexOf(kim), 1);
});

test('PostgreSQL restarts: both pages reconnect, and nothing is lost or doubled', async () => {
	const [alex, sam] = people;

	await openChannel(alex, 'Sam');
	await waitBubble(alex, 'Leaving now, ETA Lübeck 11:40.');
	const banners = Promise.all([alex, sam].map((p) =>
		p.page.locator('#banner[data-kind="reconnecting"]').waitFor({timeout: 30000})));
	const restarted = restartCluster();

	await banners;
	/* alex keeps writing while the server is away: the outbox holds it */
	await say(alex, 'Did you get the new address?');
	await say(alex, 'It is Hafenstraße 7.');
	await alex.page.locator('.msg.pending').nth(1).waitFor();
	await shot(alex, '5-alex-offline-pending');
	await restarted;
	await Promise.all([alex, sam].map((p) => p.page.waitForFunction(() => window.chat.state === 'open', null, {timeout: 30000})));
	await waitBubble(sam, 'It is Hafenstraße 7.');
	await alex.page.waitForFunction(() => document.querySelectorAll('.msg.pending').length === 0, null, {timeout: 20000});
	await sql(`SELECT chat_send(${lit(alexSam)}, 'sam', 'Got it, thanks!')`);
	await waitBubble(alex, 'Got it, thanks!');
	await waitBubble(sam, 'Got it, thanks!');
	const want = ['Loading at dock 3 now.', 'Great, ping me when you leave the depot.', 'Leaving now, ETA Lübeck 11:40.',
		'Did you get the new address?', 'It is Hafenstraße 7.', 'Got it, thanks!'];

	assert.deepEqual(await bubbles(alex), want);
	assert.deepEqual(await bubbles(sam), want);
	assert.equal(await sql(`SELECT count(*) FROM chat.messages WHERE channel_id = ${lit(alexSam)}`), String(want.length));
	await alex.page.locator('#banner').waitFor({state: 'hidden'});
	await shot(alex, '6-alex-after-restart');
	await shot(sam, '6-sam-after-restart');
	for (const p of people)
		assert.deepEqual(p.problems, [], `${p.user}: no errors on the page`);
});
