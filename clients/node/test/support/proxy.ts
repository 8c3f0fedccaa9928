// A TCP proxy in front of the server whose connections the test can cut, to make a client
// reconnect while the server (and what it remembers) stays up.

import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface CuttableProxy {
    /** ws://127.0.0.1:PORT of the proxy. */
    readonly url: string;
    /** Drops every connection open through the proxy (both sides at once). */
    cut(): void;
    close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<CuttableProxy> {
    const open = new Set<Socket>();
    const server: Server = createServer((client) => {
        const upstream = createConnection({ host: "127.0.0.1", port: targetPort });
        for (const s of [client, upstream]) {
            open.add(s);
            s.on("close", () => open.delete(s));
            s.on("error", () => {});
        }
        client.pipe(upstream);
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
        close() {
            for (const s of open) s.destroy();
            return new Promise<void>((resolve) => server.close(() => resolve()));
        },
    };
}
