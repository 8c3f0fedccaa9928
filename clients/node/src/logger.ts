// Console logging when `showLogs` is on. Callers never pass the API key or a URL
// containing it; see describeUrl().

export interface Logger {
    info(message: string): void;
    warn(message: string): void;
}

const PREFIX = "[FluxionDB]";

export function createLogger(enabled: boolean): Logger {
    if (!enabled) {
        return { info() {}, warn() {} };
    }
    return {
        info(message) {
            console.log(`${PREFIX} ${message}`);
        },
        warn(message) {
            console.warn(`${PREFIX} ${message}`);
        },
    };
}
