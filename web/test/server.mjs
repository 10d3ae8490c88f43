// Starting the streamgate-server binary for the browser tests: on a given address (port 0
// for a free one) with extra flags, its stderr prefixed with "server>", resolved with the
// child and its URL once the banner names the gRPC address.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const root = new URL("../../", import.meta.url).pathname;
export const serverBin = process.env.STREAMGATE_SERVER_BIN ?? `${root}target/debug/streamgate-server`;

export function startServer(args) {
  const child = spawn(serverBin, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, RUST_LOG: "warn" },
  });
  child.stderr.on("data", (chunk) => process.stderr.write(`server> ${chunk}`));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no banner from the server within 30 s")), 30000);
    child.on("exit", (code) => reject(new Error(`server exited early with ${code}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const match = line.match(/(https?:\/\/[0-9.:]+)/);
      if (match && line.includes("gRPC")) {
        clearTimeout(timer);
        resolve({ child, url: match[1] });
      }
    });
  });
}
