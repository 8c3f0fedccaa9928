// Builds the connection URL: the user's URL with `api-key` (and `name` when non-empty)
// set as query parameters. Existing values of those two parameters are replaced.

export function buildConnectUrl(base: string, apiKey: string, connectionName: string): string {
    const url = new URL(base);
    url.searchParams.set("api-key", apiKey);
    if (connectionName !== "") {
        url.searchParams.set("name", connectionName);
    } else {
        url.searchParams.delete("name");
    }
    return url.toString();
}

/** The URL without any query string or credentials, safe to log. */
export function describeUrl(base: string): string {
    try {
        const url = new URL(base);
        return `${url.protocol}//${url.host}${url.pathname}`;
    } catch {
        return "(invalid URL)";
    }
}
