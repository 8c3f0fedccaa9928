// Live subscriptions (`sub` / `unsub`): pushes routed to their handlers by subscription id,
// resumed with `after_seq` after every reconnect. See "Live subscriptions" in docs/protocol.md of the repository.

import { CLOSED_BY_CLIENT, ConnectionClosedError } from "./errors.js";
import type { Logger } from "./logger.js";
import type { ServerResponse } from "./pending.js";
import type { Transport } from "./transport.js";

/** What to watch. `doc`, `where` and `filter` work as in fetchLatestRecords(). */
export interface SubscribeParams {
    col: string;
    /** A document name or a `/pattern/flags`; absent: every document. */
    doc?: string;
    where?: string;
    filter?: string;
    /**
     * First deliver every stored record with `ts > since`, then live writes. The backlog is complete
     * once as many backlog frames as the server's answer announced (`backlog`) were delivered, or a
     * later write was. Should the connection drop before that, the subscription ends (`subend` with
     * `resumeLost`) instead of resuming; after it, it resumes as any other.
     */
    since?: number;
    /** Resume after this sequence number (from an earlier subscription's `seq`). Not with `since`. */
    afterSeq?: number;
}

/** One record of a `rec` push. */
export interface PushedRecord {
    doc: string;
    ts: number;
    data: string;
}

/** The records of one write that the subscription selects, in applied order. */
export interface RecordPush {
    type: "rec";
    sub: string;
    col: string;
    /** The collection's apply sequence number of the write. */
    seq: number;
    records: PushedRecord[];
}

/**
 * A delete: `from`/`to` for deleteRecord() and deleteRecordsRange(), `ts` for
 * deleteMultipleRecords() (one push per document; all but the last carry `more`), `doc` alone
 * for deleteDocument(), neither for deleteCollection().
 */
export interface DeletePush {
    type: "del";
    sub: string;
    col: string;
    seq: number;
    doc?: string;
    from?: number;
    to?: number;
    ts?: number[];
    more?: boolean;
}

/** The subscription ended (it delivers nothing more). */
export interface SubscriptionEnded {
    type: "subend";
    sub: string;
    /**
     * `subscriber too slow`, `resume point lost`, `API key revoked`, BACKLOG_INTERRUPTED, why
     * reconnecting gave up (e.g. `WebSocket reconnect attempts exhausted.`), or why resubscribing
     * failed (the server's error, or `Request … timed out after …ms.`).
     */
    error: string;
    /**
     * True when the writes since the last delivered one cannot be delivered (the server no longer
     * holds them, the connection was lost for good, or a `since` backlog was cut short): re-read
     * the state (fetchLatestRecords / fetchDocument) and subscribe again.
     */
    resumeLost: boolean;
}

/**
 * The connection was replaced and the server took the subscription back, resuming after
 * `afterSeq`: the writes missed since then come next, then live ones. A server that no longer
 * holds them ends the subscription instead (`subend` `resume point lost`, `resumeLost`), and then
 * this event is not delivered.
 */
export interface SubscriptionResumed {
    type: "reconnected";
    sub: string;
    afterSeq: number;
}

export type SubscriptionEvent = RecordPush | DeletePush | SubscriptionEnded | SubscriptionResumed;

/**
 * Receives a subscription's events, one at a time, in order; never before subscribe() has
 * resolved. What it throws, or the rejection of the promise it returns (which is not awaited),
 * goes to the client's `onHandlerError`, else is rethrown as an uncaught exception.
 */
export type SubscriptionHandler = (event: SubscriptionEvent) => void | PromiseLike<void>;

/** Receives what a subscription handler threw, or the reason its promise rejected. */
export type HandlerErrorListener = (error: unknown, event: SubscriptionEvent, subscription: Subscription) => void;

export const RESUME_POINT_LOST = "resume point lost";
/** The `subend` error of a `since` subscription whose connection dropped during its backlog. */
export const BACKLOG_INTERRUPTED = "connection lost during the since backlog";

/** A running subscription, returned by FluxionDBClient.subscribe(). */
export class Subscription {
    /** The server's id for it (a new one after every reconnect). */
    id: string;
    /** The sequence number of the last write delivered in full. */
    seq: number;
    /** False once ended by unsubscribe() or by the server. */
    active = true;
    /** The transport's number of the connection `id` belongs to. */
    connection: number | null;
    /**
     * The answer's `seq` of a `since` subscription until its backlog is known to be complete: the
     * `backlogLeft` frames announced by the answer, or a later write, arrived.
     */
    backlogSeq: number | undefined;
    /** Backlog frames still to come, when the answer said how many (older servers do not). */
    backlogLeft: number | undefined;
    /** The connection a resume request is in flight on, if any. */
    resumingOn: number | null = null;

    constructor(
        private readonly owner: Subscriptions,
        readonly params: SubscribeParams,
        readonly handler: SubscriptionHandler,
        id: string,
        seq: number,
        connection: number | null,
    ) {
        this.id = id;
        this.seq = seq;
        this.connection = connection;
    }

    /** Ends the subscription; no event is delivered after this resolves. */
    async unsubscribe(): Promise<void> {
        await this.owner.unsubscribe(this);
    }
}

function subPayload(params: SubscribeParams, afterSeq?: number): Record<string, unknown> {
    const payload: Record<string, unknown> = { col: params.col };
    if (params.doc !== undefined) payload.doc = params.doc;
    if (params.where !== undefined) payload.where = params.where;
    if (params.filter !== undefined) payload.filter = params.filter;
    if (afterSeq !== undefined) {
        payload.after_seq = afterSeq;
        return payload;
    }
    // Both when both are given: the server refuses the combination.
    if (params.since !== undefined) payload.since = params.since;
    if (params.afterSeq !== undefined) payload.after_seq = params.afterSeq;
    return payload;
}

function errorText(response: ServerResponse): string | undefined {
    if (response.error === undefined) return undefined;
    return typeof response.error === "string" ? response.error : JSON.stringify(response.error);
}

/** A subscription's events held back until the code that awaited its (re)start has run. */
interface Held {
    events: SubscriptionEvent[];
    /** Set when unsubscribe() or close() dropped them. */
    cancelled: boolean;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
    return (
        (typeof value === "object" || typeof value === "function") &&
        value !== null &&
        typeof (value as { then?: unknown }).then === "function"
    );
}

export class Subscriptions {
    /**
     * Events of subscriptions just started or resumed: those delivered before the caller of
     * subscribe() holds the Subscription would meet an uninitialised variable. They are delivered
     * one task later, with the pushes that arrive meanwhile, in order.
     */
    private readonly held = new Map<Subscription, Held>();
    /** By the server's current id. */
    private readonly byId = new Map<string, Subscription>();
    private readonly active = new Set<Subscription>();
    /**
     * Pushes for ids not known yet, numbered in arrival order: a subscription's first pushes may
     * arrive before its answer, or be dispatched before the code awaiting the answer runs. They
     * are kept, however many (the server bounds a backlog), while a `sub` request sent before
     * them waits for its answer.
     */
    private early: { n: number; frame: ServerResponse }[] = [];
    /** Numbers the pushes kept in `early`. */
    private kept = 0;
    /** One per `sub` request not settled yet: the number the next push kept then got. */
    private marks: number[] = [];

    /**
     * Sends `sub`; the caller calls settled(mark) once it has handled the answer. A subscription
     * the server starts after the request timed out is ended at once.
     */
    private request(params: SubscribeParams, afterSeq?: number): { answer: Promise<ServerResponse>; mark: number } {
        const mark = this.kept;
        this.marks.push(mark);
        const answer = this.transport.request("sub", subPayload(params, afterSeq), {
            onLate: (response) => {
                if (errorText(response) === undefined) this.sendUnsub(String(response.sub), this.transport.connection);
            },
        });
        return { answer, mark };
    }

    /** Ends the server's subscription `id` of `connection`; nothing to do when that connection is gone. */
    private sendUnsub(id: string, connection: number | null): void {
        if (connection === null || connection !== this.transport.connection) return;
        this.transport.request("unsub", { sub: id }, { connection }).then(
            (response) => {
                const error = errorText(response);
                if (error !== undefined && error !== "unknown subscription") this.log.warn(`unsub ${id}: ${error}`);
            },
            (error: unknown) => this.log.warn(`unsub ${id}: ${String(error)}`),
        );
    }

    /** A `sub` request was handled: the pushes kept before every other one was sent go. */
    private settled(mark: number): void {
        const at = this.marks.indexOf(mark);
        if (at >= 0) this.marks.splice(at, 1);
        let oldest = Infinity;
        for (const m of this.marks) oldest = Math.min(oldest, m);
        if (oldest === Infinity) this.early = [];
        else if (this.early.length > 0 && this.early[0]!.n < oldest) this.early = this.early.filter((e) => e.n >= oldest);
    }

    constructor(
        private readonly transport: Transport,
        private readonly log: Logger,
        private readonly onHandlerError: HandlerErrorListener | undefined,
    ) {
        transport.onPush = (frame) => this.route(frame);
        transport.onReconnect = () => this.resumeAll();
        transport.onDrop = () => this.dropped();
        transport.onGiveUp = (error) => this.endAll(error.message);
    }

    async subscribe(params: SubscribeParams, handler: SubscriptionHandler): Promise<Subscription> {
        const { answer, mark } = this.request(params);
        try {
            const response = await answer;
            const error = errorText(response);
            if (error !== undefined) throw new Error(error);
            const seq = Number(response.seq);
            // Delivered in full so far: up to afterSeq (the writes after it are replayed first).
            const start = params.afterSeq ?? seq;
            const sub = new Subscription(this, params, handler, String(response.sub), start, this.transport.connection);
            if (params.since !== undefined) {
                const frames = response.backlog;
                if (typeof frames === "number" && Number.isSafeInteger(frames) && frames >= 0) {
                    // Complete at once when empty; else once that many frames were delivered.
                    if (frames > 0) {
                        sub.backlogSeq = seq;
                        sub.backlogLeft = frames;
                    }
                } else {
                    sub.backlogSeq = seq; // an older server: complete once a later write arrived
                }
            }
            this.byId.set(sub.id, sub);
            this.active.add(sub);
            // Even with no early push: one may come before the caller's code has run.
            this.hold(sub, this.takeEarly(sub));
            return sub;
        } finally {
            this.settled(mark);
        }
    }

    async unsubscribe(sub: Subscription): Promise<void> {
        if (!sub.active) return;
        this.end(sub);
        this.dropHeld(sub);
        // Its id belongs to sub.connection: a resume in flight ends the new id once answered, and
        // a connection that is gone took the server's subscription with it.
        const connection = sub.connection;
        if (sub.resumingOn !== null || connection === null || connection !== this.transport.connection) return;
        let response: ServerResponse;
        try {
            response = await this.transport.request("unsub", { sub: sub.id }, { connection });
        } catch (error) {
            // The connection was lost (or the client closed) before the answer: the server's
            // subscription ended with it, and an ended subscription is not resumed.
            if (
                error instanceof ConnectionClosedError ||
                (error instanceof Error && error.message === CLOSED_BY_CLIENT) ||
                connection !== this.transport.connection
            ) {
                return;
            }
            throw error;
        }
        const error = errorText(response);
        // Ended by the server meanwhile: nothing left to end.
        if (error !== undefined && error !== "unknown subscription") throw new Error(error);
    }

    /** The client was closed: every subscription ends without an event. */
    clear(): void {
        this.early = [];
        for (const held of this.held.values()) held.cancelled = true;
        this.held.clear();
        for (const sub of this.active) sub.active = false;
        this.active.clear();
        this.byId.clear();
    }

    private end(sub: Subscription): void {
        sub.active = false;
        this.active.delete(sub);
        if (this.byId.get(sub.id) === sub) this.byId.delete(sub.id);
    }

    /** Ends `sub` with a `subend` event the client made. */
    private endWith(sub: Subscription, error: string, resumeLost: boolean): void {
        this.end(sub);
        this.emit(sub, { type: "subend", sub: sub.id, error, resumeLost });
    }

    /** Reconnecting gave up: no subscription can resume. */
    private endAll(error: string): void {
        for (const sub of [...this.active]) this.endWith(sub, error, true);
    }

    /**
     * The connection dropped. A `since` subscription whose backlog is not known to have arrived in
     * full cannot resume after its `seq` (every backlog frame carries the answer's): it ends.
     */
    private dropped(): void {
        for (const sub of [...this.active]) {
            if (sub.backlogSeq !== undefined) this.endWith(sub, BACKLOG_INTERRUPTED, true);
        }
    }

    /** Delivers `event` now, or after the events held back for `sub`. */
    private emit(sub: Subscription, event: SubscriptionEvent): void {
        const held = this.held.get(sub);
        if (held !== undefined) held.events.push(event);
        else this.deliver(sub, event);
    }

    /** Holds `events` (and what comes meanwhile) back for one task: see `held`. */
    private hold(sub: Subscription, events: SubscriptionEvent[]): void {
        const existing = this.held.get(sub);
        if (existing !== undefined) {
            existing.events.push(...events);
            return;
        }
        const held: Held = { events, cancelled: false };
        this.held.set(sub, held);
        setTimeout(() => this.release(sub, held), 0);
    }

    private release(sub: Subscription, held: Held): void {
        const { events } = held;
        for (let i = 0; i < events.length && !held.cancelled; i++) {
            const event = events[i]!;
            // A resume the server refused at once: `reconnected` would claim what did not happen.
            const next = events[i + 1];
            if (event.type === "reconnected" && next?.type === "subend" && next.error === RESUME_POINT_LOST) continue;
            this.deliver(sub, event);
        }
        if (this.held.get(sub) === held) this.held.delete(sub);
    }

    private dropHeld(sub: Subscription): void {
        const held = this.held.get(sub);
        if (held === undefined) return;
        held.cancelled = true;
        this.held.delete(sub);
    }

    private deliver(sub: Subscription, event: SubscriptionEvent): void {
        let result: unknown;
        try {
            result = sub.handler(event);
        } catch (error) {
            this.handlerFailed(error, event, sub);
            return;
        }
        if (isThenable(result)) result.then(undefined, (error: unknown) => this.handlerFailed(error, event, sub));
    }

    /** Never silent: to onHandlerError when given, else an uncaught exception (as a listener's would be). */
    private handlerFailed(error: unknown, event: SubscriptionEvent, sub: Subscription): void {
        this.log.warn(`Subscription handler failed on a ${event.type} event: ${String(error)}`);
        if (this.onHandlerError !== undefined) {
            try {
                this.onHandlerError(error, event, sub);
                return;
            } catch (listenerError) {
                error = listenerError;
            }
        }
        queueMicrotask(() => {
            throw error;
        });
    }

    /** Takes the pushes that arrived for `sub` before its answer was handled, as events. */
    private takeEarly(sub: Subscription): SubscriptionEvent[] {
        const mine = this.early.filter((e) => e.frame.sub === sub.id);
        if (mine.length === 0) return [];
        this.early = this.early.filter((e) => e.frame.sub !== sub.id);
        const events: SubscriptionEvent[] = [];
        for (const e of mine) {
            const event = this.accept(sub, e.frame);
            if (event !== undefined) events.push(event);
        }
        return events;
    }

    private route(frame: ServerResponse): void {
        const sub = typeof frame.sub === "string" ? this.byId.get(frame.sub) : undefined;
        if (sub === undefined) {
            if (this.marks.length > 0) this.early.push({ n: this.kept++, frame });
            return;
        }
        const event = this.accept(sub, frame);
        if (event !== undefined) this.emit(sub, event);
    }

    /** Takes a push for `sub` into account as it arrives; returns the event to deliver, if any. */
    private accept(sub: Subscription, frame: ServerResponse): SubscriptionEvent | undefined {
        if (!sub.active) return undefined; // ended, not ours any more
        if (frame.type === "subend") {
            this.end(sub);
            const error = String(frame.error);
            return { type: "subend", sub: sub.id, error, resumeLost: error === RESUME_POINT_LOST };
        }
        if (frame.type !== "rec" && frame.type !== "del") return undefined;
        if (typeof frame.seq === "number" && sub.backlogSeq !== undefined) {
            if (frame.seq > sub.backlogSeq) {
                sub.backlogSeq = undefined; // a later write: the backlog is complete
            } else if (frame.seq === sub.backlogSeq && frame.type === "rec" && sub.backlogLeft !== undefined) {
                sub.backlogLeft--;
                if (sub.backlogLeft <= 0) sub.backlogSeq = undefined; // every announced frame arrived
            }
        }
        if (frame.more !== true && typeof frame.seq === "number") sub.seq = frame.seq;
        return frame as unknown as RecordPush | DeletePush;
    }

    /** A new connection replaced a dropped one: resume every subscription after its last write. */
    private resumeAll(): void {
        this.byId.clear();
        this.early = [];
        const connection = this.transport.connection;
        for (const sub of this.active) {
            const afterSeq = sub.seq;
            sub.resumingOn = connection;
            const { answer, mark } = this.request(sub.params, afterSeq);
            answer
                .then(
                    (response) => {
                        if (sub.resumingOn === connection) sub.resumingOn = null;
                        const error = errorText(response);
                        if (!sub.active) {
                            // Unsubscribed while the answer was on its way.
                            if (error === undefined) this.sendUnsub(String(response.sub), connection);
                            return;
                        }
                        if (error !== undefined) {
                            this.endWith(sub, error, false);
                            return;
                        }
                        sub.id = String(response.sub);
                        sub.connection = connection;
                        this.byId.set(sub.id, sub);
                        // Held back a task: a `resume point lost` that comes with the answer
                        // replaces it.
                        this.hold(sub, [{ type: "reconnected", sub: sub.id, afterSeq }, ...this.takeEarly(sub)]);
                    },
                    (error: unknown) => {
                        if (sub.resumingOn === connection) sub.resumingOn = null;
                        // The new connection dropped too: the next one resumes it. On a connection
                        // still open (a timeout) nothing would: it ends, and a late answer is unsubscribed.
                        if (!sub.active || connection === null || connection !== this.transport.connection) return;
                        this.endWith(sub, error instanceof Error ? error.message : String(error), false);
                    },
                )
                .finally(() => this.settled(mark));
        }
    }
}
