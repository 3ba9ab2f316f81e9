// Drives an openapi-fetch client, typed by openapi-typescript from
// openapi/openapi.json, against a live server. sdk/ci.sh generates the types
// into target/sdk/typescript, type-checks this file with tsc, starts the
// server and sets BIRTHDAY_API_URL and BIRTHDAY_API_TOKEN.
import assert from "node:assert/strict";
import { test } from "node:test";

import createClient from "openapi-fetch";
import type { components, paths } from "birthday-api-schema";

type Problem = components["schemas"]["Problem"];

const baseUrl = process.env.BIRTHDAY_API_URL;
const token = process.env.BIRTHDAY_API_TOKEN;
assert.ok(baseUrl && token, "BIRTHDAY_API_URL and BIRTHDAY_API_TOKEN must be set");

const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
// Letters only, and no other driver uses it, so the drivers can share a server.
const username = "Typescripter";
const path = { params: { path: { username } } };

test("PUT, GET, DELETE round trip", async () => {
  const saved = await client.PUT("/hello/{username}", { ...path, body: { dateOfBirth: "1990-07-14" } });
  assert.equal(saved.response.status, 204);

  const greeting = await client.GET("/hello/{username}", path);
  assert.equal(greeting.response.status, 200);
  const message: string | undefined = greeting.data?.message;
  assert.match(message ?? "", /^Hello, Typescripter! (Your birthday is in [1-9][0-9]* day\(s\)|Happy birthday!)$/);

  const deleted = await client.DELETE("/hello/{username}", path);
  assert.equal(deleted.response.status, 204);

  const again = await client.DELETE("/hello/{username}", path);
  assert.equal(again.response.status, 404);
  const problem: Problem | undefined = again.error;
  assert.equal(problem?.status, 404);
});

test("an unknown user is a 404 problem document", async () => {
  const { data, error, response } = await client.GET("/hello/{username}", {
    params: { path: { username: "Nobodyknowsme" } },
  });
  assert.equal(response.status, 404);
  assert.equal(response.headers.get("content-type"), "application/problem+json");
  assert.equal(data, undefined);
  assert.equal(error?.title, "Not Found");
  assert.match(error?.detail ?? "", /Nobodyknowsme/);
});

test("a bad date is a 400 that names the rule", async () => {
  const { error, response } = await client.PUT("/hello/{username}", {
    ...path,
    body: { dateOfBirth: "2001-02-30" },
  });
  assert.equal(response.status, 400);
  assert.match(error?.errors?.INVALID_DATE ?? "", /^dateOfBirth must be/);
  assert.equal(error?.errors?.INVALID_USERNAME, undefined);
});
