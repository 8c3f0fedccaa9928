// A TCP proxy in front of the server whose connections the test can cut, to make a client
// reconnect while the server (and what it remembers) stays up.

import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface CuttableProxy {
    /** ws://127.0.0.1:PORT of the proxy. */
    readonly url: string;
    /** Drops every connection open through the proxy (both sides at once). */
    cut(): void;
    /**
     * Holds back what clients send, past each connection's first chunk (its upgrade request), so
     * that new connections still become ready while their requests wait in the proxy.
     */
    holdRequests(): void;
    /** Forwards what was held, in order, and stops holding. */
    releaseRequests(): void;
    close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<CuttableProxy> {
    const open = new Set<Socket>();
    let holding = false;
    const releases = new Set<() => void>();
    const server: Server = createServer((client) => {
        const upstream = createConnection({ host: "127.0.0.1", port: targetPort });
        for (const s of [client, upstream]) {
            open.add(s);
            s.on("close", () => open.delete(s));
            s.on("error", () => {});
        }
        let first = true;
        const held: Buffer[] = [];
        const release = () => {
            for (const chunk of held.splice(0)) upstream.write(chunk);
        };
        releases.add(release);
        client.on("close", () => releases.delete(release));
        client.on("data", (chunk: Buffer) => {
            if (holding && !first) held.push(chunk);
            else upstream.write(chunk);
            first = false;
        });
        upstream.pipe(client);
        client.on("close", () => upstream.destroy());
        upstream.on("close", () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("proxy has no port");
    return {
        url: `ws://127.0.0.1:${address.port}`,
        cut() {
            for (const s of open) s.destroy();
        },
        holdRequests() {
            holding = true;
        },
        releaseRequests() {
            holding = false;
            for (const release of releases) release();
        },
        close() {
            for (const s of open) s.destroy();
            return new Promise<void>((resolve) => server.close(() => resolve()));
        },
    };
}
