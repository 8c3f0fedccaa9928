// The liveness watchdog of one connection. A TCP link can die without either end being told (a
// NAT that dropped the flow, a pulled cable, a frozen VM): the socket then stays "open" and waits
// forever. So when nothing has arrived for `interval` ms the watchdog sends a probe, which the
// server answers, and when still nothing at all has arrived `timeout` ms after the probe, it
// declares the connection dead. Anything received counts, not only the probe's answer.

export interface LivenessProbe {
    /** Sends something the server answers at once. */
    probe(): void;
    /** Nothing arrived within the timeout after a probe: the connection is dead. */
    dead(): void;
}

export class LivenessWatchdog {
    private timer: ReturnType<typeof setTimeout> | undefined;
    private lastSeen = performance.now();
    /** When the outstanding probe was sent, or null when none is outstanding. */
    private probedAt: number | null = null;
    private stopped = false;

    constructor(
        private readonly interval: number,
        private readonly timeout: number,
        private readonly target: LivenessProbe,
    ) {
        this.schedule(interval);
    }

    /** Something arrived from the server. Cheap unless a probe is outstanding: called for every frame. */
    seen(): void {
        this.lastSeen = performance.now();
        if (this.probedAt !== null) {
            // Answered: the next probe is due after a full interval of silence from now.
            this.probedAt = null;
            if (this.timer !== undefined) clearTimeout(this.timer);
            this.schedule(this.interval);
        }
    }

    stop(): void {
        this.stopped = true;
        if (this.timer !== undefined) clearTimeout(this.timer);
        this.timer = undefined;
    }

    private schedule(delay: number): void {
        if (this.stopped) return;
        this.timer = setTimeout(() => this.check(), Math.max(1, Math.ceil(delay)));
        // The connection, not its watchdog, decides whether the process stays alive.
        (this.timer as { unref?: () => void }).unref?.();
    }

    private check(): void {
        this.timer = undefined;
        if (this.stopped) return;
        const now = performance.now();
        if (this.probedAt !== null) {
            // Nothing arrived since the probe (seen() would have cleared it).
            const waited = now - this.probedAt;
            if (waited >= this.timeout) {
                this.stop();
                this.target.dead();
            } else {
                this.schedule(this.timeout - waited);
            }
            return;
        }
        const silent = now - this.lastSeen;
        if (silent < this.interval) {
            this.schedule(this.interval - silent);
            return;
        }
        this.probedAt = now;
        this.schedule(this.timeout);
        this.target.probe();
    }
}
