import { Webhook } from 'svix';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Storm } from './storm';

/**
 * Concurrent senders that deliver the storm to the webhook endpoint over HTTP as Svix does: each
 * attempt signed at its own time (a fresh `svix-timestamp` and signature, the same `svix-id`), and
 * anything but a 2xx retried, at once and then after short delays (Svix's schedule, compressed).
 */

/** Delays before each retry of one delivery, ms (Svix: 0 s, 5 s, 5 min, 30 min, 2 h, ...). */
const RETRY_DELAYS_MS = [0, 50, 150, 400, 800, 1_500, 2_500, 4_000];

export interface SendReport {
  /** 2xx answers, by svix-id. */
  readonly accepted: Map<string, number>;
  /** Non-2xx answers, by status code. */
  readonly refused: Map<number, number>;
  /** Deliveries that never got a 2xx through every retry. */
  readonly undelivered: string[];
  readonly attempts: number;
}

export async function sendStorm(storm: Storm, url: string, secret: string, concurrency: number): Promise<SendReport> {
  const webhook = new Webhook(secret);
  const accepted = new Map<string, number>();
  const refused = new Map<number, number>();
  const undelivered: string[] = [];
  let attempts = 0;
  let next = 0;

  async function deliver(index: number): Promise<void> {
    const message = storm.messages[index]!;
    for (const delay of [0, ...RETRY_DELAYS_MS]) {
      if (delay > 0) await sleep(delay);
      const at = new Date();
      attempts += 1;
      let status: number;
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'svix-id': message.svixId,
            'svix-timestamp': String(Math.floor(at.getTime() / 1000)),
            'svix-signature': webhook.sign(message.svixId, at, message.body),
          },
          body: message.body,
        });
        await response.arrayBuffer();
        status = response.status;
      } catch {
        status = 0;
      }
      if (status >= 200 && status < 300) {
        accepted.set(message.svixId, (accepted.get(message.svixId) ?? 0) + 1);
        return;
      }
      refused.set(status, (refused.get(status) ?? 0) + 1);
    }
    undelivered.push(message.svixId);
  }

  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < storm.deliveries.length) await deliver(storm.deliveries[next++]!);
    }),
  );
  return { accepted, refused, undelivered, attempts };
}
