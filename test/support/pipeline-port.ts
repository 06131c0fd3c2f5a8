import { createServer } from 'node:net';
import { PORT_SETTINGS } from '../../local/config';
import { randomInt } from 'node:crypto';

/** Whether a port on loopback can be listened on now. */
function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/**
 * Below Linux's ephemeral range (32768 and up): the ports every connection and every `listen(0)` of
 * the other test processes draw from. A pipeline port found free there could be taken between the
 * check and `npm start`'s listen; down here only another explicit choice can take it.
 */
const CHOSEN_PORTS = { from: 20_000, to: 32_000 } as const;

/**
 * A free port to start the local pipeline on as `npm start` does (`PORT`), whose stand-in ports
 * (`PORT_SETTINGS` offsets above it) are free too, outside the ephemeral range (`CHOSEN_PORTS`).
 */
export async function freePipelinePort(): Promise<number> {
  const offsets = [0, PORT_SETTINGS.dynamodb.offset, PORT_SETTINGS.sqsAndS3.offset, PORT_SETTINGS.eventBridge.offset];
  for (;;) {
    const port = CHOSEN_PORTS.from + randomInt(CHOSEN_PORTS.to - CHOSEN_PORTS.from);
    if ((await Promise.all(offsets.map((offset) => isFree(port + offset)))).every(Boolean)) return port;
  }
}
