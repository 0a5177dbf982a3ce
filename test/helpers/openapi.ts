/**
 * Checks real HTTP responses against openapi.yaml: the operation must be documented, the status
 * must be one of its responses, and the body must match that response's schema (JSON Schema
 * 2020-12 via ajv). Records which operations the tests exercised.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse } from "yaml";
import { REPO } from "./fixtures.js";

type Json = Record<string, unknown>;

export class OpenApiChecker {
  readonly doc: Json;
  readonly exercised = new Set<string>();
  private readonly ajv: Ajv2020;

  constructor(file = join(REPO, "openapi.yaml")) {
    this.doc = parse(readFileSync(file, "utf8")) as Json;
    this.ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
    this.ajv.addSchema(this.doc, "openapi");
  }

  /** Every documented operation as "METHOD /path". */
  operations(): string[] {
    const out: string[] = [];
    for (const [path, item] of Object.entries(this.doc.paths as Json)) {
      for (const method of ["get", "post", "put", "patch", "delete", "head"]) {
        if ((item as Json)[method]) out.push(`${method.toUpperCase()} ${path}`);
      }
    }
    return out;
  }

  /** Throws a message naming the mismatch when the response is not what the document says. */
  check(method: string, url: string, status: number, contentType: string | null, body: unknown): void {
    const path = new URL(url, "http://x").pathname;
    const template = this.matchPath(path);
    if (!template) throw new Error(`openapi: ${method} ${path} is not documented`);
    const operation = (this.doc.paths as Json)[template] as Json;
    const op = operation[method.toLowerCase()] as Json | undefined;
    if (!op) throw new Error(`openapi: ${method} ${template} is not documented`);
    this.exercised.add(`${method.toUpperCase()} ${template}`);
    const responses = op.responses as Json;
    let pointer = `/paths/${escape(template)}/${method.toLowerCase()}/responses/${status}`;
    let response = responses[String(status)] as Json | undefined;
    if (!response) throw new Error(`openapi: ${method} ${template} does not document status ${status}`);
    const ref = response.$ref;
    if (typeof ref === "string") {
      pointer = ref.slice(1);
      response = this.resolve(pointer);
    }
    const content = response.content as Json | undefined;
    if (!content) return;
    const type = (contentType ?? "").split(";")[0]!.trim();
    if (!content[type])
      throw new Error(`openapi: ${method} ${template} ${status} does not document content type ${type}`);
    const validate = this.ajv.compile({ $ref: `openapi#${pointer}/content/${escape(type)}/schema` });
    if (!validate(body)) {
      throw new Error(
        `openapi: ${method} ${template} ${status} body does not match: ${this.ajv.errorsText(validate.errors)}\n${JSON.stringify(body)}`,
      );
    }
  }

  private matchPath(path: string): string | undefined {
    const paths = Object.keys(this.doc.paths as Json);
    if (paths.includes(path)) return path;
    return paths.find((t) => new RegExp(`^${t.replace(/\{[^}]+\}/g, ".+")}$`).test(path));
  }

  private resolve(pointer: string): Json {
    let node: unknown = this.doc;
    for (const part of pointer.split("/").slice(1))
      node = (node as Json)[part.replace(/~1/g, "/").replace(/~0/g, "~")];
    return node as Json;
  }
}

function escape(segment: string): string {
  return segment.replace(/~/g, "~0").replace(/\//g, "~1").replace(/\{/g, "%7B").replace(/\}/g, "%7D");
}
