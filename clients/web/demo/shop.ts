/**
 * The demo shop: a page of the demo app that uses the web SDK as any app's page would. Its
 * own backend (nudgetools.demo_server) serves it, tells it the edge's address and the app's
 * public key (/config.json) and signs a user token for the signed-in user (/token). The
 * shop's events carry `source: "shop"`, which the demo campaigns (nudgetools.demo) filter on:
 *
 * - sign up  → `signup`: the welcome modal, pushed over the stream at once;
 * - add to cart → `added_to_cart`;
 * - leave with items → `cart_abandoned`: the reminder comes due a few seconds later and shows
 *   when the shopper is back (or at once, if they already are);
 * - check out → `purchase`: cancels the reminder, and a short survey follows.
 *
 * The SDK is bundled from ../src but loaded from the same `nudge.js` every page loads
 * (scripts/build.mjs keeps the import external).
 */
import { init, type InAppMessage, type Nudge, type SubscriptionState } from "../src/index.js";

interface Config {
  /** The edge's base URL (gRPC-Web). */
  endpoint: string;
  /** The demo app's key of the `public` scope: safe in a page, only with a user token. */
  apiKey: string;
}

interface Account {
  id: string;
  name: string;
}

interface Product {
  sku: string;
  name: string;
  price: number;
  colour: string;
}

interface CartItem {
  sku: string;
  name: string;
  price: number;
}

const PRODUCTS: Product[] = [
  { sku: "mug", name: "Nudge mug", price: 12.5, colour: "#0b5cff" },
  { sku: "tee", name: "T-shirt", price: 24, colour: "#1a7f37" },
  { sku: "hoodie", name: "Hoodie", price: 59, colour: "#8250df" },
  { sku: "poster", name: "Poster", price: 18, colour: "#bf3989" },
];

// Every event the shop sends says where it comes from: the demo campaigns react to these only.
const SOURCE = "shop";
const ACCOUNT_KEY = "nudge-shop-account";
const CART_KEY = "nudge-shop-cart";
// A token is fetched again when less than this is left of its life.
const TOKEN_MARGIN_MS = 60_000;

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element as T;
};

let config: Config | undefined;
let nudge: Nudge | undefined;
let cart: CartItem[] = load<CartItem[]>(CART_KEY) ?? [];
let token: { user: string; value: string; expires: number } | undefined;

function load<T>(key: string): T | undefined {
  try {
    const text = localStorage.getItem(key);
    return text ? (JSON.parse(text) as T) : undefined;
  } catch {
    return undefined;
  }
}

function save(key: string, value: unknown): void {
  if (value === undefined) localStorage.removeItem(key);
  else localStorage.setItem(key, JSON.stringify(value));
}

function log(text: string): void {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  $("activity").prepend(item);
}

function warn(what: string, error: unknown): void {
  log(`${what}: ${error instanceof Error ? error.message : String(error)}`);
  console.warn(`shop: ${what}:`, error);
}

/** The signed user token, from the shop's own backend; kept until it nearly expires. */
async function userToken(user: string): Promise<string> {
  if (token && token.user === user && token.expires - Date.now() > TOKEN_MARGIN_MS) return token.value;
  const response = await fetch(`/token?user=${encodeURIComponent(user)}`);
  if (!response.ok) throw new Error(`/token answered ${response.status}`);
  const body = (await response.json()) as { token: string; expires_in: number };
  token = { user, value: body.token, expires: Date.now() + body.expires_in * 1000 };
  return body.token;
}

const STATE_TEXT: Record<SubscriptionState, string> = {
  connecting: "Connecting…",
  open: "Live",
  waiting: "Reconnecting…",
  closed: "Not connected",
};

function showStreamState(state: SubscriptionState): void {
  const stream = $("stream");
  stream.dataset.state = state;
  stream.textContent = STATE_TEXT[state];
  if (state === "open") log("stream open: messages now arrive as they are sent");
}

/** Starts the SDK for the account and holds the stream. */
function connect(account: Account): void {
  if (!config) throw new Error("no configuration yet");
  nudge = init({
    endpoint: config.endpoint,
    apiKey: config.apiKey,
    userToken: () => userToken(account.id),
    beforeDisplay: (message: InAppMessage) => {
      log(`message received: ${message.content?.title || "(untitled)"}`);
      return "show";
    },
    onDeepLink: (target: string) => {
      if (target === "app://cart") $("cart").scrollIntoView({ behavior: "smooth" });
      log(`deep link ${target}`);
    },
    onError: (error: unknown) => warn("nudge", error),
  });
  nudge.subscribe({ onStateChange: showStreamState });
}

function disconnect(): void {
  nudge?.close();
  nudge = undefined;
  showStreamState("closed");
}

async function track(name: string, properties: Record<string, unknown> = {}): Promise<void> {
  try {
    await nudge?.track(name, { source: SOURCE, ...properties });
    log(`event ${name} sent`);
  } catch (error) {
    warn(`event ${name} not sent`, error);
  }
}

function cartValue(): number {
  return Math.round(cart.reduce((sum, item) => sum + item.price, 0) * 100) / 100;
}

function show(section: "signup" | "shop" | "away"): void {
  for (const id of ["signup", "shop", "away"]) $(id).hidden = id !== section;
}

function renderAccount(account: Account | undefined): void {
  $("account").hidden = !account;
  $("account-name").textContent = account?.name ?? "";
  $("account-id").textContent = account?.id ?? "";
}

function renderProducts(): void {
  const list = $("products");
  for (const product of PRODUCTS) {
    const item = document.createElement("li");
    item.className = "product";
    item.style.borderTop = `6px solid ${product.colour}`;
    const title = document.createElement("h3");
    title.textContent = product.name;
    const price = document.createElement("p");
    price.textContent = product.price.toFixed(2);
    const add = document.createElement("button");
    add.type = "button";
    add.textContent = "Add to cart";
    add.dataset.sku = product.sku;
    add.setAttribute("aria-label", `Add ${product.name} to cart`);
    add.addEventListener("click", () => addToCart(product));
    item.append(title, price, add);
    list.append(item);
  }
}

function renderCart(): void {
  const items = $("cart-items");
  items.replaceChildren(...cart.map((item) => {
    const li = document.createElement("li");
    li.textContent = `${item.name} ${item.price.toFixed(2)}`;
    return li;
  }));
  $("cart-empty").hidden = cart.length > 0;
  $("cart-total").textContent = cartValue().toFixed(2);
  $<HTMLButtonElement>("checkout").disabled = cart.length === 0;
}

async function addToCart(product: Product): Promise<void> {
  cart.push({ sku: product.sku, name: product.name, price: product.price });
  save(CART_KEY, cart);
  renderCart();
  await track("added_to_cart", { sku: product.sku, price: product.price, cart_value: cartValue() });
}

async function signUp(name: string): Promise<void> {
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "shopper";
  const account = { id: `${slug}-${crypto.randomUUID().slice(0, 8)}`, name };
  save(ACCOUNT_KEY, account);
  cart = [];
  save(CART_KEY, cart);
  enter(account);
  log(`signed up as ${account.id}`);
  try {
    await nudge?.identify({ attributes: { first_name: name } });
  } catch (error) {
    warn("identify failed", error);
  }
  await track("signup", { first_name: name });
}

async function checkOut(): Promise<void> {
  const properties = { cart_value: cartValue(), items: cart.length };
  cart = [];
  save(CART_KEY, cart);
  renderCart();
  await track("purchase", properties);
}

async function leave(): Promise<void> {
  if (cart.length > 0) {
    await track("cart_abandoned", { cart_value: cartValue(), items: cart.length });
    $("away-text").textContent = `You left ${cart.length} item${cart.length === 1 ? "" : "s"} worth `
      + `${cartValue().toFixed(2)} in your cart. Come back in a few seconds: a reminder is waiting.`;
  } else {
    $("away-text").textContent = "Your cart was empty, so nothing is waiting for you.";
  }
  disconnect();
  show("away");
}

function enter(account: Account): void {
  renderAccount(account);
  renderCart();
  show("shop");
  connect(account);
}

function signOut(): void {
  disconnect();
  save(ACCOUNT_KEY, undefined);
  save(CART_KEY, undefined);
  cart = [];
  renderAccount(undefined);
  show("signup");
}

async function start(): Promise<void> {
  renderProducts();
  const response = await fetch("/config.json");
  if (!response.ok) throw new Error(`/config.json answered ${response.status}`);
  config = (await response.json()) as Config;

  $("signup-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $<HTMLInputElement>("name").value.trim();
    if (name) void signUp(name);
  });
  $("checkout").addEventListener("click", () => void checkOut());
  $("leave").addEventListener("click", () => void leave());
  $("sign-out").addEventListener("click", signOut);
  $("come-back").addEventListener("click", () => {
    const account = load<Account>(ACCOUNT_KEY);
    if (account) {
      enter(account);
      log("back in the shop");
    } else {
      show("signup");
    }
  });

  // `?user=ID&name=NAME` signs in as a returning shopper (a link to come back as someone).
  const params = new URLSearchParams(location.search);
  const asked = params.get("user");
  if (asked && asked !== load<Account>(ACCOUNT_KEY)?.id) {
    save(ACCOUNT_KEY, { id: asked, name: params.get("name") || asked });
    cart = [];
    save(CART_KEY, cart);
  }
  const account = load<Account>(ACCOUNT_KEY);
  if (account) enter(account);
  else show("signup");
}

start().catch((error) => warn("the shop could not start", error));
