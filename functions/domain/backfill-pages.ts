import type { BackfillCheckpoint } from './backfill-job';

/**
 * The pages of a historical run from its checkpoint on, with up to `limit` of them begun and not yet
 * checkpointed. A page is begun as soon as the page before it arrives (its cursor comes with that
 * page), so the next page is fetched while the current one is stored. Fetches stay one request at a
 * time and in order; stores stay one at a time and in order; the runner takes the pages in order
 * (`current`), writes each checkpoint after its page is stored, then frees its room
 * (`checkpointed`). With a limit of 1 a page is begun only once the page before it is checkpointed:
 * one page after another.
 *
 * The budget is asked before each page is begun, as it was before each page when they went one by
 * one, so every page begun is stored and checkpointed before the invocation hands the job back. A
 * page begun and not checkpointed when the run stops early (the page before it failed or lost its
 * checkpoint to another invocation; a crash; a timeout) is dropped: the checkpoint is still on or
 * before it, so it is fetched again from there, never skipped.
 */

/** Where the page after a page starts: the same window at the next cursor, or the next window. */
export const checkpointAfter = (from: BackfillCheckpoint, nextCursor: string | null): BackfillCheckpoint =>
  nextCursor === null ? { windowIndex: from.windowIndex + 1, cursor: null } : { windowIndex: from.windowIndex, cursor: nextCursor };

export interface PagesAheadOptions<F extends { readonly nextCursor: string | null }, S> {
  /** Windows of the run: a page past the last is not begun. */
  readonly windowCount: number;
  /** Most pages begun and not yet checkpointed (1 or more). */
  readonly limit: number;
  /** Asked before each page is begun; false ends the invocation's pages. */
  anotherPage(): boolean;
  /** The number (in the run) of the first page begun here; each page begun after it takes the next. */
  readonly firstPageNumber: number;
  fetch(from: BackfillCheckpoint, pageNumber: number): Promise<F>;
  store(page: F, from: BackfillCheckpoint, pageNumber: number): Promise<S>;
}

export class PagesAhead<F extends { readonly nextCursor: string | null }, S> {
  /**
   * Pages begun and not yet checkpointed, in run order, the first being the page at the checkpoint:
   * each resolves once fetched and stored, or rejects with the fetch's or the store's error.
   */
  private readonly begun: Promise<S>[] = [];
  /** Where the next page starts, when it is known and waits for room. */
  private waiting: BackfillCheckpoint | undefined;
  private windowCount: number;
  private nextPageNumber: number;
  private budgetSpent = false;
  private stopped = false;

  constructor(private readonly options: PagesAheadOptions<F, S>) {
    if (!Number.isInteger(options.limit) || options.limit < 1) throw new RangeError(`limit must be a whole number of at least 1, got ${options.limit}`);
    this.windowCount = options.windowCount;
    this.nextPageNumber = options.firstPageNumber;
  }

  /** Begins the page at `from`, if the run goes there, it has room and the budget allows. */
  offer(from: BackfillCheckpoint): void {
    if (this.stopped || this.budgetSpent || from.windowIndex >= this.windowCount) return;
    if (this.begun.length >= this.options.limit) {
      this.waiting = from;
      return;
    }
    if (!this.options.anotherPage()) {
      this.budgetSpent = true;
      return;
    }
    const pageNumber = this.nextPageNumber++;
    // Pages are begun in run order: the last one begun, if not checkpointed yet, is the page before this one.
    const previous = this.begun.at(-1);
    const work = this.options.fetch(from, pageNumber).then(async (page) => {
      // The next page's cursor is known: begin it while this one waits for its turn and is stored.
      this.offer(checkpointAfter(from, page.nextCursor));
      // Stored one at a time, in run order, as when pages went one by one (a failure before it is this page's too).
      await previous;
      // The runner takes no more pages once stopped: this one is dropped, to be fetched again from the checkpoint.
      if (this.stopped) throw new Error('page dropped: the run stopped before it was stored');
      return this.options.store(page, from, pageNumber);
    });
    // The runner sees a page's failure when it comes to that page, in order; until then it is not unhandled.
    work.catch(() => undefined);
    this.begun.push(work);
  }

  /** The page at the checkpoint, begun; undefined when the budget said no to it. */
  current(): Promise<S> | undefined {
    return this.begun[0];
  }

  /**
   * The current page is checkpointed and the run goes on at `next`, over `windowCount` windows (more
   * when ranges were added to the run meanwhile): its room goes to the page that waited for it, or,
   * when the run was given windows past the page, to the first of them.
   */
  checkpointed(next: BackfillCheckpoint, windowCount: number): void {
    this.begun.shift();
    this.windowCount = windowCount;
    const from = this.waiting ?? (this.begun.length === 0 ? next : undefined);
    this.waiting = undefined;
    if (from) this.offer(from);
  }

  /** Begins no more pages and waits until those begun have settled; whatever is not checkpointed is dropped. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled(this.begun);
  }
}
