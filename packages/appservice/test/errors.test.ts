import assert from "node:assert/strict";
import { MatrixError, MissingTokenError, TooLargeError } from "@trestle/appservice";

describe("MatrixError", () => {
  it("serialises to the Matrix error shape", () => {
    const err = new MissingTokenError();
    assert.equal(err.httpStatus, 401);
    assert.deepEqual(err.toJSON(), { errcode: "M_MISSING_TOKEN", error: "Missing access token" });
    assert.ok(err instanceof MatrixError);
  });

  it("names the limit in M_TOO_LARGE", () => {
    assert.match(new TooLargeError(1024).message, /1024 bytes/);
  });
});
