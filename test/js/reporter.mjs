/*
 * reporter.mjs: a node --test reporter that appends one line per test to
 * the file named by $RESULTS, as test/run expects: "PASS <suite>::<file>::<test>"
 * or "FAIL ...".  A skipped test proves nothing, so it counts as a failure;
 * a file that fails to load is reported under its own name.
 *
 *   node --test --test-reporter=spec --test-reporter-destination=stdout \
 *     --test-reporter=./reporter.mjs --test-reporter-destination=/dev/null
 *
 * SUITE_NAME (default test/js) prefixes every line.  A failure also gets up
 * to WHY_LINES "WHY <test>: ..." lines with its error, which test/run prints
 * at the end: CI's log keeps only its tail, where the spec output is gone.
 */
import {appendFileSync} from 'node:fs';
import {basename} from 'node:path';

const WHY_LINES = 12;

/* why formats the error of a failed test as "WHY" lines for test/run. */
function why(name, d) {
	const err = d.details && d.details.error;
	const cause = err && (err.cause || err);
	const text = cause ? String(cause.stack || cause.message || cause) :
		(d.skip ? 'skipped' : d.todo ? 'todo' : 'no error recorded');

	return text.split('\n').filter((l) => l.trim() !== '' && !/^\s+at /.test(l)).slice(0, WHY_LINES)
		.map((l) => `WHY ${name}: ${l}\n`).join('');
}

export default async function* reporter(source) {
	const results = process.env.RESULTS;
	const suite = process.env.SUITE_NAME || 'test/js';
	const path = new Map();		/* nesting -> name of the enclosing suite */

	for await (const ev of source) {
		if (ev.type === 'test:start')
			path.set(ev.data.nesting, ev.data.name);
		if (ev.type !== 'test:pass' && ev.type !== 'test:fail')
			continue;
		const d = ev.data;
		/* a suite's own line adds nothing unless it failed outside its tests */
		if (d.details && d.details.type === 'suite' && ev.type === 'test:pass')
			continue;
		const parents = [];

		for (let i = 0; i < d.nesting; i++)
			parents.push(path.get(i));
		const file = d.file ? basename(d.file) : '?';
		const name = d.name === d.file ? '(load)' : [...parents, d.name].join(' > ');
		const ok = ev.type === 'test:pass' && !d.skip && !d.todo;
		const line = `${ok ? 'PASS' : 'FAIL'} ${suite}::${file}::${name}\n`;

		if (results) {
			appendFileSync(results, line);
			if (!ok)
				appendFileSync(results, why(`${suite}::${file}::${name}`, d));
		}
		yield '';
	}
}
