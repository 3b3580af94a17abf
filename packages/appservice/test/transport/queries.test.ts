import assert from "node:assert/strict";
import { MatrixApiError } from "../../src/client/errors.js";
import type {
  ThirdPartyLocation,
  ThirdPartyProtocol,
  ThirdPartyQuery,
  ThirdPartyUser,
} from "../../src/transport/handlers.js";
import { assertMatrixError, type Harness, HS_TOKEN, startAppservice, statusAndBody } from "./helpers.js";

const V1 = "/_matrix/app/v1";

const ircProtocol: ThirdPartyProtocol = {
  user_fields: ["network", "nickname"],
  location_fields: ["network", "channel"],
  icon: "mxc://hs/irc",
  field_types: { network: { regexp: "[a-z]+", placeholder: "libera" } },
  instances: [{ desc: "Libera", fields: { network: "libera" }, network_id: "libera" }],
};
const location: ThirdPartyLocation = {
  alias: "#_irc_chan:hs",
  protocol: "irc",
  fields: { network: "libera", channel: "#chan" },
};
const user: ThirdPartyUser = {
  userid: "@_irc_bob:hs",
  protocol: "irc",
  fields: { network: "libera", nickname: "bob" },
};

describe("appservice HTTP API: queries, third party and ping", () => {
  let as: Harness;
  afterEach(() => as?.close());

  describe("user and alias queries", () => {
    const asked: string[] = [];
    beforeEach(async () => {
      asked.length = 0;
      as = await startAppservice({
        handlers: {
          onUserQuery: async (userId) => {
            asked.push(userId);
            return userId === "@_irc_newguy:localhost";
          },
          onAliasQuery: async (alias) => {
            asked.push(alias);
            return alias === "#_irc_chan:localhost";
          },
        },
      });
    });

    it("decodes the user ID as Synapse encodes it and answers 200 {} when it exists", async () => {
      const res = await as.request(`${V1}/users/%40_irc_newguy%3Alocalhost`);
      assert.deepEqual(await statusAndBody(res), [200, {}]);
      assert.deepEqual(asked, ["@_irc_newguy:localhost"]);
    });

    it("answers 404 M_NOT_FOUND for a user that does not exist", async () => {
      await assertMatrixError(await as.request(`${V1}/users/%40other%3Alocalhost`), 404, "M_NOT_FOUND");
    });

    it("decodes the alias and answers 200 {} when it exists, 404 otherwise", async () => {
      assert.deepEqual(await statusAndBody(await as.request(`${V1}/rooms/%23_irc_chan%3Alocalhost`)), [
        200,
        {},
      ]);
      await assertMatrixError(await as.request(`${V1}/rooms/%23nope%3Alocalhost`), 404, "M_NOT_FOUND");
      assert.deepEqual(asked, ["#_irc_chan:localhost", "#nope:localhost"]);
    });

    it("decodes aliases holding slashes, dots and spaces as one path segment", async () => {
      const alias = "#a/b.c d:localhost";
      assert.equal((await as.request(`${V1}/rooms/${encodeURIComponent(alias)}`)).status, 404);
      assert.deepEqual(asked, [alias]);
    });

    it("serves the legacy /users and /rooms paths", async () => {
      assert.equal((await as.request("/users/%40_irc_newguy%3Alocalhost")).status, 200);
      assert.equal((await as.request("/rooms/%23_irc_chan%3Alocalhost")).status, 200);
    });
  });

  it("answers 502 M_UNKNOWN when a call to the homeserver failed while answering it, not the homeserver's own error", async () => {
    as = await startAppservice({
      handlers: {
        onUserQuery: async () => {
          throw new MatrixApiError(401, "M_UNKNOWN_TOKEN", "Unrecognised access token", {
            method: "POST",
            path: "/_matrix/client/v3/register",
          });
        },
        onAliasQuery: async () => false,
      },
    });
    const res = await as.request(`${V1}/users/%40_irc_newguy%3Alocalhost`);
    const [status, body] = await statusAndBody(res);
    assert.equal(status, 502);
    assert.equal((body as { errcode: string }).errcode, "M_UNKNOWN");
    assert.match(
      (body as { error: string }).error,
      /request to the homeserver failed.*Unrecognised access token/,
    );
  });

  describe("third party lookups", () => {
    const queries: [string, string, ThirdPartyQuery][] = [];
    beforeEach(async () => {
      queries.length = 0;
      as = await startAppservice({
        handlers: {
          getProtocol: async (protocol) => (protocol === "irc" ? ircProtocol : null),
          getLocations: async (protocol, query) => {
            queries.push(["location", protocol, query]);
            return query.channel === "#chan" ? [location] : [];
          },
          getUsers: async (protocol, query) => {
            queries.push(["user", protocol, query]);
            return query.nickname === "bob" ? [user] : [];
          },
          getLocationsByAlias: async (alias) => (alias === location.alias ? [location] : []),
          getUsersByUserId: async (userId) => (userId === user.userid ? [user] : []),
        },
      });
    });

    it("serves protocol metadata, and 404 M_NOT_FOUND for an unknown protocol", async () => {
      assert.deepEqual(await statusAndBody(await as.request(`${V1}/thirdparty/protocol/irc`)), [
        200,
        ircProtocol,
      ]);
      await assertMatrixError(await as.request(`${V1}/thirdparty/protocol/xmpp`), 404, "M_NOT_FOUND");
    });

    it("passes search fields, without the legacy access_token, to location and user lookups", async () => {
      const res = await as.request(
        `${V1}/thirdparty/location/irc?network=libera&channel=%23chan&access_token=${HS_TOKEN}`,
      );
      assert.deepEqual(await statusAndBody(res), [200, [location]]);
      const users = await as.request(`${V1}/thirdparty/user/irc?network=libera&nickname=bob&nickname=dup`);
      assert.deepEqual(await statusAndBody(users), [200, [user]]);
      assert.deepEqual(queries, [
        ["location", "irc", { network: "libera", channel: "#chan" }],
        ["user", "irc", { network: "libera", nickname: "bob" }],
      ]);
    });

    it("answers 404 M_NOT_FOUND when a lookup finds nothing", async () => {
      for (const path of [
        `${V1}/thirdparty/location/irc?channel=%23none`,
        `${V1}/thirdparty/user/irc?nickname=nobody`,
        `${V1}/thirdparty/location?alias=%23none%3Ahs`,
        `${V1}/thirdparty/user?userid=%40none%3Ahs`,
      ]) {
        await assertMatrixError(await as.request(path), 404, "M_NOT_FOUND", path);
      }
    });

    it("reverse-looks-up by alias and by user ID", async () => {
      const byAlias = await as.request(
        `${V1}/thirdparty/location?alias=${encodeURIComponent(location.alias)}`,
      );
      assert.deepEqual(await statusAndBody(byAlias), [200, [location]]);
      const byUser = await as.request(`${V1}/thirdparty/user?userid=${encodeURIComponent(user.userid)}`);
      assert.deepEqual(await statusAndBody(byUser), [200, [user]]);
    });

    it("answers 400 M_MISSING_PARAM without alias or userid", async () => {
      for (const path of [`${V1}/thirdparty/location`, `${V1}/thirdparty/user`]) {
        await assertMatrixError(await as.request(path), 400, "M_MISSING_PARAM", path);
      }
    });

    it("serves the legacy unstable third-party paths", async () => {
      const res = await as.request("/_matrix/app/unstable/thirdparty/protocol/irc");
      assert.deepEqual(await statusAndBody(res), [200, ircProtocol]);
    });
  });

  it("answers 404 M_NOT_FOUND on every third-party endpoint when the bridge has no handlers", async () => {
    as = await startAppservice();
    for (const path of [
      `${V1}/thirdparty/protocol/irc`,
      `${V1}/thirdparty/location/irc?channel=x`,
      `${V1}/thirdparty/user/irc?nickname=x`,
      `${V1}/thirdparty/location?alias=%23a%3Ahs`,
      `${V1}/thirdparty/user?userid=%40a%3Ahs`,
    ]) {
      await assertMatrixError(await as.request(path), 404, "M_NOT_FOUND", path);
    }
  });

  describe("ping", () => {
    const pings: (string | undefined)[] = [];
    beforeEach(async () => {
      pings.length = 0;
      as = await startAppservice({
        handlers: {
          onPing: async (transactionId) => {
            pings.push(transactionId);
          },
        },
      });
    });

    const ping = (body?: string) => as.request(`${V1}/ping`, { method: "POST", body });

    it("answers 200 {} and passes the transaction_id on", async () => {
      assert.deepEqual(await statusAndBody(await ping(JSON.stringify({ transaction_id: "meow" }))), [
        200,
        {},
      ]);
      assert.deepEqual(await statusAndBody(await ping("{}")), [200, {}]);
      assert.deepEqual(pings, ["meow", undefined]);
    });

    it("accepts an empty body", async () => {
      assert.equal((await ping()).status, 200);
      assert.deepEqual(pings, [undefined]);
    });

    it("answers 400 M_BAD_JSON for a non-string transaction_id", async () => {
      await assertMatrixError(await ping(JSON.stringify({ transaction_id: 5 })), 400, "M_BAD_JSON");
      assert.deepEqual(pings, []);
    });

    it("answers 400 M_NOT_JSON for a body that is not JSON", async () => {
      await assertMatrixError(await ping("nope"), 400, "M_NOT_JSON");
    });

    it("answers 200 without an onPing handler", async () => {
      await as.close();
      as = await startAppservice();
      assert.equal((await ping("{}")).status, 200);
    });
  });
});
