// Imports a module (argv[2]) with a resolve hook that records every module URL loaded, then
// prints them as JSON: how a test sees what a light command really pulls in at runtime.
import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';

const { port1, port2 } = new MessageChannel();
const loaded = [];
port1.on('message', (url) => loaded.push(url));
port1.unref();
register(new URL('./load-hooks.mjs', import.meta.url), { data: { port: port2 }, transferList: [port2] });
await import(process.argv[2]);
await new Promise((r) => setTimeout(r, 200)); // let the hook thread's last messages arrive
process.stdout.write(JSON.stringify(loaded));
process.exit(0);
