// Draws one preview with the web SDK, exactly as a page does: the SDK fetches "the user's
// messages" over gRPC-Web from this console (which answers with the rendered preview) and its
// renderer puts the message on this frame's page. Reports of clicks and dismissals come back
// to the console and are recorded nowhere.
import { Nudge } from "/assets/nudge.js";

const stage = document.getElementById("stage");
const state = document.getElementById("state");
const nudge = new Nudge({
  endpoint: new URL(stage.dataset.endpoint, location.href).href.replace(/\/$/, ""),
  apiKey: "console-preview",
  userId: "console-preview",
  container: stage,
  onError: (error) => { state.textContent = `The preview could not be drawn: ${error}`; },
});
// Inside the console's preview page (a same-origin frame), the page keeps the keyboard: a
// modal takes focus when it opens, as it must on a real page, and here it is handed back.
const host = window.frameElement;
try {
  const messages = await nudge.fetchMessages();
  if (host) host.blur();
  stage.dataset.drawn = String(messages.length);
  document.documentElement.dataset.drawn = String(messages.length);
} catch (error) {
  state.textContent = `The preview could not be fetched: ${error}`;
}
