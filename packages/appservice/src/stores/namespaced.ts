import type { KeyValueStore } from "./types.js";

/** A {@link KeyValueStore} bound to one namespace, to hand to a component that owns it. */
export interface NamespacedKeyValue {
  readonly namespace: string;
  get<T>(key: string): Promise<T | undefined>;
  set<T>(key: string, value: T): Promise<void>;
  delete(key: string): Promise<boolean>;
  keys(): Promise<string[]>;
}

export function namespacedKeyValue(store: KeyValueStore, namespace: string): NamespacedKeyValue {
  return {
    namespace,
    get: (key) => store.get(namespace, key),
    set: (key, value) => store.set(namespace, key, value),
    delete: (key) => store.delete(namespace, key),
    keys: () => store.keys(namespace),
  };
}
