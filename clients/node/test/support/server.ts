// Starts the real server binary on an ephemeral (or given) port of 127.0.0.1 and stops it.
// The binary comes from $FLUXIONDB_BIN, else <repo>/target/debug/fluxiondb (built by cargo).

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { waitFor } from "./wait.js";

export const MASTER_KEY = "master-key";
const STARTUP_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

export function serverBinary(): string {
    const fromEnv = process.env.FLUXIONDB_BIN;
    if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
    // This file runs from clients/node/dist-test/support/.
    return fileURLToPath(new URL("../../../../target/debug/fluxiondb", import.meta.url));
}

export interface Exit {
    code: number | null;
    signal: NodeJS.Signals | null;
}

export interface RunningServer {
    readonly port: number;
    /** ws://127.0.0.1:PORT */
    readonly url: string;
    readonly key: string;
    readonly exited: Promise<Exit>;
    /** Sends `signal` and waits for the process to end (SIGKILL after a bounded wait). */
    stop(signal?: NodeJS.Signals): Promise<Exit>;
    /** Stops the process (SIGSTOP) and waits until every one of its threads is stopped. */
    pause(): Promise<void>;
    /** Resumes a paused process (SIGCONT). */
    resume(): void;
    /** The last part of what the server wrote to stderr, for failure messages. */
    logs(): string;
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
    for (const child of running) child.kill("SIGKILL");
});

function allThreadsStopped(pid: number): boolean {
    const tasks = `/proc/${pid}/task`;
    if (!existsSync(tasks)) return true; // not Linux: best effort
    try {
        return readdirSync(tasks).every((tid) => {
            const stat = readFileSync(`${tasks}/${tid}/stat`, "utf8");
            const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
            return state === "T" || state === "t";
        });
    } catch {
        return false;
    }
}

export interface StartOptions {
    key?: string;
    port?: number;
    extraArgs?: string[];
}

export async function startServer(options: StartOptions = {}): Promise<RunningServer> {
    const binary = serverBinary();
    if (!existsSync(binary)) {
        throw new Error(`server binary not found at ${binary}: run \`cargo build\` in the repository root or set FLUXIONDB_BIN`);
    }
    const key = options.key ?? MASTER_KEY;
    const workDir = mkdtempSync(join(tmpdir(), "fluxiondb-node-test-"));
    const args = ["--secret-key", key, "--port", String(options.port ?? 0), "--bind", "127.0.0.1", ...(options.extraArgs ?? [])];
    const child = spawn(binary, args, { cwd: workDir, stdio: ["ignore", "pipe", "pipe"] });
    running.add(child);

    let stderr = "";
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
        stderr = (stderr + chunk).slice(-8000);
    });
    const exited = new Promise<Exit>((resolve) => {
        child.on("exit", (code, signal) => {
            running.delete(child);
            rmSync(workDir, { recursive: true, force: true });
            resolve({ code, signal });
        });
    });

    const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => {
            child.kill("SIGKILL");
            reject(new Error(`server did not report its port within ${STARTUP_TIMEOUT_MS}ms; stderr:\n${stderr}`));
        }, STARTUP_TIMEOUT_MS);
        const lines = createInterface({ input: child.stdout! });
        lines.on("line", (line) => {
            const match = /^fluxiondb listening on .*:(\d+)\s*$/.exec(line);
            if (match) {
                clearTimeout(timer);
                resolve(Number(match[1]));
            }
        });
        void exited.then((exit) => {
            clearTimeout(timer);
            reject(new Error(`server exited before listening (${JSON.stringify(exit)}); stderr:\n${stderr}`));
        });
        child.on("error", (error) => {
            clearTimeout(timer);
            reject(error);
        });
    });

    return {
        port,
        url: `ws://127.0.0.1:${port}`,
        key,
        exited,
        async stop(signal: NodeJS.Signals = "SIGTERM") {
            if (child.exitCode === null && child.signalCode === null) {
                child.kill(signal);
                const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
                const exit = await exited;
                clearTimeout(timer);
                return exit;
            }
            return exited;
        },
        async pause() {
            child.kill("SIGSTOP");
            // A stop signal reaches the threads one after another; until all are stopped, one
            // may still answer a request. Linux shows each thread's state under /proc.
            await waitFor(() => allThreadsStopped(child.pid!), "the server to stop");
        },
        resume() {
            child.kill("SIGCONT");
        },
        logs() {
            return stderr;
        },
    };
}
