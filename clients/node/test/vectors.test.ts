// Wire-layer replay of every case of tests/vectors/protocol.json (not the restart cases),
// each against a fresh in-memory server, through the runtime's global WebSocket.

import { describe, it } from "node:test";
import { startServer } from "./support/server.js";
import { loadVectors, replayCase } from "./support/vectors.js";

const vectors = loadVectors();
const CONCURRENCY = Number(process.env.FLUXIONDB_VECTOR_CONCURRENCY ?? 4);

describe("protocol vectors", { concurrency: CONCURRENCY }, () => {
    for (const testCase of vectors.cases) {
        it(`${testCase.name}: ${testCase.title}`, async () => {
            const server = await startServer({ key: vectors.master_key });
            try {
                await replayCase(testCase, server.port);
            } catch (error) {
                const logs = server.logs().trim();
                if (logs !== "") (error as Error).message += `\n--- server stderr (tail) ---\n${logs.slice(-2000)}`;
                throw error;
            } finally {
                await server.stop("SIGKILL");
            }
        });
    }
});
