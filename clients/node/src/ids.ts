// Request ids: 24 characters from [a-z0-9] (about 124 bits), drawn from the
// runtime's cryptographic generator when it has one.

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const LENGTH = 24;
// Largest multiple of 36 below 256: bytes at or above it are discarded to avoid bias.
const LIMIT = 252;

type RandomSource = (bytes: Uint8Array) => void;

function pickRandomSource(): RandomSource {
    const cryptoObject = (globalThis as { crypto?: { getRandomValues?: (b: Uint8Array) => Uint8Array } })
        .crypto;
    if (cryptoObject && typeof cryptoObject.getRandomValues === "function") {
        return (bytes) => {
            cryptoObject.getRandomValues!(bytes);
        };
    }
    return (bytes) => {
        for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    };
}

const fill = pickRandomSource();

export function newRequestId(): string {
    let id = "";
    const bytes = new Uint8Array(LENGTH * 2);
    while (id.length < LENGTH) {
        fill(bytes);
        for (let i = 0; i < bytes.length && id.length < LENGTH; i++) {
            const byte = bytes[i]!;
            if (byte < LIMIT) id += ALPHABET[byte % ALPHABET.length];
        }
    }
    return id;
}
