import assert from "node:assert/strict";
import { bearerToken, createTokenCheck } from "../../src/transport/auth.js";
import { assertMatrixError, type Harness, HS_TOKEN, startAppservice, statusAndBody } from "./helpers.js";

const WRONG = "wrong-token-55d1b0";
const TXN_PATH = "/_matrix/app/v1/transactions/1";

describe("hs_token checks", () => {
  it("matches only the exact token, whatever the lengths", () => {
    const matches = createTokenCheck(HS_TOKEN);
    assert.equal(matches(HS_TOKEN), true);
    assert.equal(matches(`${HS_TOKEN}x`), false);
    assert.equal(matches(HS_TOKEN.slice(1)), false);
    assert.equal(matches(""), false);
  });

  it("reads the token of a Bearer header only", () => {
    assert.equal(bearerToken("Bearer abc"), "abc");
    assert.equal(bearerToken("bearer  abc "), "abc");
    assert.equal(bearerToken("Basic abc"), undefined);
    assert.equal(bearerToken("Bearer"), undefined);
    assert.equal(bearerToken(undefined), undefined);
  });
});

describe("appservice API authentication", () => {
  let as: Harness;
  beforeEach(async () => {
    as = await startAppservice();
  });
  afterEach(() => as.close());

  const put = (path: string, token: string | null) =>
    as.request(path, { method: "PUT", body: JSON.stringify({ events: [] }), token });

  it("answers 401 M_MISSING_TOKEN without a token", async () => {
    await assertMatrixError(await put(TXN_PATH, null), 401, "M_MISSING_TOKEN");
    assert.equal(as.transactions.length, 0);
  });

  it("answers 401 when the Authorization header is not a Bearer token", async () => {
    const res = await as.request(TXN_PATH, {
      method: "PUT",
      body: "{}",
      token: null,
      headers: { Authorization: `Basic ${HS_TOKEN}` },
    });
    assert.equal(res.status, 401);
  });

  it("answers 403 M_FORBIDDEN for a wrong token", async () => {
    await assertMatrixError(await put(TXN_PATH, WRONG), 403, "M_FORBIDDEN");
    assert.equal(as.transactions.length, 0);
  });

  it("accepts the legacy access_token query parameter alone", async () => {
    const res = await put(`${TXN_PATH}?access_token=${HS_TOKEN}`, null);
    assert.equal(res.status, 200);
    assert.equal(as.transactions.length, 1);
  });

  it("rejects a wrong legacy access_token with 403", async () => {
    const res = await put(`${TXN_PATH}?access_token=${WRONG}`, null);
    assert.equal(res.status, 403);
  });

  it("accepts a legacy access_token equal to the header's token", async () => {
    const res = await put(`${TXN_PATH}?access_token=${HS_TOKEN}`, HS_TOKEN);
    assert.equal(res.status, 200);
  });

  it("rejects a legacy access_token that differs from a valid header with 403", async () => {
    const [status, body] = await statusAndBody(await put(`${TXN_PATH}?access_token=${WRONG}`, HS_TOKEN));
    assert.equal(status, 403);
    assert.match((body as { error: string }).error, /does not match/);
    assert.equal(as.transactions.length, 0);
  });

  it("rejects a wrong header even when the query token is right", async () => {
    const res = await put(`${TXN_PATH}?access_token=${HS_TOKEN}`, WRONG);
    assert.equal(res.status, 403);
  });

  it("guards every appservice endpoint, legacy ones too", async () => {
    for (const path of [
      "/_matrix/app/v1/users/%40a%3Ahs",
      "/_matrix/app/v1/rooms/%23a%3Ahs",
      "/_matrix/app/v1/thirdparty/protocol/irc",
      "/_matrix/app/v1/thirdparty/location?alias=%23a%3Ahs",
      "/users/%40a%3Ahs",
      "/rooms/%23a%3Ahs",
      "/_matrix/app/unstable/thirdparty/protocol/irc",
    ]) {
      assert.equal((await as.request(path, { token: null })).status, 401, path);
      assert.equal((await as.request(path, { token: WRONG })).status, 403, path);
    }
    const ping = await as.request("/_matrix/app/v1/ping", { method: "POST", body: "{}", token: WRONG });
    assert.equal(ping.status, 403);
  });

  it("logs one warning per rejection, never the token values", async () => {
    await put(`${TXN_PATH}?access_token=${WRONG}`, HS_TOKEN);
    await put(TXN_PATH, WRONG);
    const warnings = as.lines.filter((l) => l.level === 40);
    assert.equal(warnings.length, 2);
    assert.deepEqual(
      warnings.map((l) => [l.status, l.errcode, l.path]),
      [
        [403, "M_FORBIDDEN", TXN_PATH],
        [403, "M_FORBIDDEN", TXN_PATH],
      ],
    );
    const logged = JSON.stringify(as.lines);
    assert.doesNotMatch(logged, new RegExp(HS_TOKEN));
    assert.doesNotMatch(logged, new RegExp(WRONG));
  });
});
