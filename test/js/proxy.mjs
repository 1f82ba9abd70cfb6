/*
 * proxy.mjs: a TCP proxy in front of the chat port that can go silent.
 * freeze() stops forwarding on every open connection without closing it,
 * the way a dead NAT entry or a pulled cable looks: nothing arrives and
 * nothing says so.  New connections are forwarded normally.
 */
import net from 'node:net';

export async function startProxy(targetPort) {
	const pairs = new Set();
	const server = net.createServer((down) => {
		const up = net.connect(targetPort, '127.0.0.1');
		const pair = {down, up, frozen: false};

		pairs.add(pair);
		down.on('data', (d) => {
			if (!pair.frozen)
				up.write(d);
		});
		up.on('data', (d) => {
			if (!pair.frozen)
				down.write(d);
		});
		const end = () => {
			pairs.delete(pair);
			down.destroy();
			up.destroy();
		};

		down.on('error', end);
		up.on('error', end);
		down.on('close', () => {
			if (!pair.frozen)
				end();
		});
		up.on('close', () => {
			if (!pair.frozen)
				end();
		});
	});

	await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
	return {
		port: server.address().port,
		/* freeze silences the connections open now; returns how many */
		freeze() {
			for (const p of pairs)
				p.frozen = true;
			return pairs.size;
		},
		close() {
			for (const p of pairs) {
				p.down.destroy();
				p.up.destroy();
			}
			server.close();
		},
	};
}
