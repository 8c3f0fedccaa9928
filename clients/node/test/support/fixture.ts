// One real server per test file, and clients connected to it that are closed after the file.

import { after, before } from "node:test";
import { FluxionDBClient, type FluxionDBClientOptions } from "../../dist/index.js";
import { startServer, type RunningServer } from "./server.js";

export interface ServerFixture {
    /** The server of this file (available inside tests). */
    readonly server: RunningServer;
    /** A client on this file's server; closed automatically after the file. */
    client(options?: Partial<FluxionDBClientOptions>): FluxionDBClient;
}

export function useServer(): ServerFixture {
    let server: RunningServer | undefined;
    const clients: FluxionDBClient[] = [];
    before(async () => {
        server = await startServer();
    });
    after(async () => {
        for (const client of clients) client.close();
        await server?.stop("SIGTERM");
    });
    return {
        get server() {
            if (server === undefined) throw new Error("server not started yet");
            return server;
        },
        client(options = {}) {
            const client = new FluxionDBClient({
                url: this.server.url,
                apiKey: this.server.key,
                reconnectInterval: 50,
                ...options,
            });
            clients.push(client);
            return client;
        },
    };
}

/** Fails the file if any promise rejection went unhandled while it ran. */
export function forbidUnhandledRejections(): void {
    const seen: unknown[] = [];
    const record = (reason: unknown) => seen.push(reason);
    before(() => process.on("unhandledRejection", record));
    after(() => {
        process.off("unhandledRejection", record);
        if (seen.length > 0) throw new Error(`unhandled rejections: ${seen.map(String).join("; ")}`);
    });
}
