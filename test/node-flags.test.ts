// The server's V8 flags (src/server/node-flags.ts) are the same wherever it is started: `npm
// start`, the Docker image, the bench (which imports them); and this Node accepts them.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { SERVER_NODE_FLAGS } from "../src/server/node-flags.js";

describe("the server's Node flags", () => {
  it("are on npm start's command and the image's CMD", () => {
    const start = (JSON.parse(readFileSync("package.json", "utf8")) as { scripts: Record<string, string> }).scripts.start!;
    const cmd = /^CMD (\[.*\])$/m.exec(readFileSync("Dockerfile", "utf8"))?.[1];
    expect(cmd).toBeDefined();
    const image = JSON.parse(cmd!) as string[];
    for (const flag of SERVER_NODE_FLAGS) {
      expect(start).toMatch(new RegExp(`node ${flag} dist/src/server/main\\.js`));
      expect(image.slice(0, image.indexOf("dist/src/server/main.js"))).toContain(flag);
    }
  });

  it("are accepted by this Node", () => {
    const r = spawnSync(process.execPath, [...SERVER_NODE_FLAGS, "-e", "0"], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});
