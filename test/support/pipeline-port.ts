import { createServer } from 'node:net';
import { PORT_SETTINGS } from '../../local/config';
import { freePort } from '../../local/stand-ins';

/** Whether a port on loopback can be listened on now. */
function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/**
 * A free port to start the local pipeline on as `npm start` does (`PORT`), whose stand-in ports
 * (`PORT_SETTINGS` offsets above it) are free too.
 */
export async function freePipelinePort(): Promise<number> {
  const offsets = [PORT_SETTINGS.dynamodb.offset, PORT_SETTINGS.sqsAndS3.offset, PORT_SETTINGS.eventBridge.offset];
  for (;;) {
    const port = await freePort();
    const above = offsets.map((offset) => port + offset);
    if (above.every((candidate) => candidate <= 65_535) && (await Promise.all(above.map(isFree))).every(Boolean)) return port;
  }
}
