import { create, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AttributeValueSchema, StringListSchema, type AttributeValue } from "./gen/nudge/common/v1/common_pb.js";

/** What `identify` takes as an attribute value. Whole numbers become integers, other numbers
 * doubles, Dates times, and string arrays multi-valued attributes. */
export type AttributeInput = string | number | bigint | boolean | Date | string[];

export function toAttributeValue(name: string, value: AttributeInput): AttributeValue {
  if (typeof value === "string") return create(AttributeValueSchema, { kind: { case: "stringValue", value } });
  if (typeof value === "boolean") return create(AttributeValueSchema, { kind: { case: "boolValue", value } });
  if (typeof value === "bigint") return create(AttributeValueSchema, { kind: { case: "intValue", value } });
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`attribute ${name}: ${value} is not a finite number`);
    if (Number.isSafeInteger(value)) {
      return create(AttributeValueSchema, { kind: { case: "intValue", value: BigInt(value) } });
    }
    return create(AttributeValueSchema, { kind: { case: "doubleValue", value } });
  }
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new TypeError(`attribute ${name}: invalid Date`);
    return create(AttributeValueSchema, { kind: { case: "timeValue", value: timestampFromDate(value) } });
  }
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) {
    return create(AttributeValueSchema, {
      kind: { case: "stringListValue", value: create(StringListSchema, { values: value }) },
    });
  }
  throw new TypeError(`attribute ${name}: expected a string, number, boolean, Date or string array`);
}

export function toAttributes(attributes: Record<string, AttributeInput>): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const [name, value] of Object.entries(attributes)) out[name] = toAttributeValue(name, value);
  return out;
}

/** Event properties as JSON: Dates become ISO strings, undefined members are left out, and
 * anything else that JSON cannot hold is refused here rather than garbled on the wire. */
export function toProperties(properties: Record<string, unknown>): JsonObject {
  return toJson(properties, "properties") as JsonObject;
}

function toJson(value: unknown, path: string): JsonValue {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`${path}: ${value} is not a finite number`);
    return value;
  }
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v, i) => toJson(v, `${path}[${i}]`));
  if (typeof value === "object") {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v !== undefined) out[k] = toJson(v, `${path}.${k}`);
    }
    return out;
  }
  throw new TypeError(`${path}: ${typeof value} is not a JSON value`);
}
