import { Webhook } from 'svix';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Signing, Storm } from './storm';

/**
 * Concurrent senders that deliver the storm to the webhook endpoint over HTTP as Svix does: each
 * attempt signed at its own time (a fresh `svix-timestamp` and signature, the same `svix-id`), and
 * anything but a 2xx retried, at once and then after short delays (Svix's schedule, compressed).
 *
 * Part-way through (`storm.rotationAt`) the signing secret is rotated: `rotate()` is called once,
 * before the first attempt of that position, and from there on each delivery is signed as
 * `storm.signing` says (the old secret, the new one, or both, as Svix does during a rotation).
 */

/** Delays before each retry of one delivery, ms (Svix: 0 s, 5 s, 5 min, 30 min, 2 h, ...). */
const RETRY_DELAYS_MS = [0, 50, 150, 400, 800, 1_500, 2_500, 4_000];

/** One HTTP attempt: when it started, how it was signed, what came back (0 = no answer). */
export interface Attempt {
  readonly svixId: string;
  readonly position: number;
  readonly signing: Signing;
  readonly startedAtMs: number;
  readonly status: number;
}

export interface SendReport {
  /** 2xx answers, by svix-id. */
  readonly accepted: Map<string, number>;
  /** Non-2xx answers, by status code. */
  readonly refused: Map<number, number>;
  /** Deliveries that never got a 2xx through every retry. */
  readonly undelivered: string[];
  readonly attempts: number;
  /** Every attempt, in the order they finished. */
  readonly log: Attempt[];
  /** When `rotate()` was called (undefined if the storm ended first). */
  readonly rotatedAtMs?: number;
}

export interface SigningSecretsOfSenders {
  readonly old: string;
  readonly new: string;
  /** Called once when the senders reach `storm.rotationAt`, before signing with the new secret. */
  readonly rotate: () => void;
}

export async function sendStorm(storm: Storm, url: string, secrets: SigningSecretsOfSenders, concurrency: number): Promise<SendReport> {
  const oldWebhook = new Webhook(secrets.old);
  const newWebhook = new Webhook(secrets.new);
  const accepted = new Map<string, number>();
  const refused = new Map<number, number>();
  const undelivered: string[] = [];
  const log: Attempt[] = [];
  let attempts = 0;
  let next = 0;
  let rotatedAtMs: number | undefined;

  const sign = (signing: Signing, svixId: string, at: Date, body: string): string => {
    const withOld = () => oldWebhook.sign(svixId, at, body);
    const withNew = () => newWebhook.sign(svixId, at, body);
    return signing === 'old' ? withOld() : signing === 'new' ? withNew() : `${withOld()} ${withNew()}`;
  };

  async function deliver(position: number): Promise<void> {
    const message = storm.messages[storm.deliveries[position]!]!;
    const signing = storm.signing[position] ?? 'old';
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
            'svix-signature': sign(signing, message.svixId, at, message.body),
          },
          body: message.body,
        });
        await response.arrayBuffer();
        status = response.status;
      } catch {
        status = 0;
      }
      log.push({ svixId: message.svixId, position, signing, startedAtMs: at.getTime(), status });
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
      while (next < storm.deliveries.length) {
        const position = next++;
        if (position >= storm.rotationAt && rotatedAtMs === undefined) {
          rotatedAtMs = Date.now();
          secrets.rotate();
        }
        await deliver(position);
      }
    }),
  );
  return { accepted, refused, undelivered, attempts, log, rotatedAtMs };
}
