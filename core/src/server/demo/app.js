// The demo chat: join a room, see its messages, send; the badge shows the
// connection state with the countdown to the next attempt, and the line
// under the form the outcome of each resume.
import { RingcastClient } from "./ringcast-client.js";

const $ = (id) => document.getElementById(id);
const scheme = location.protocol === "https:" ? "wss" : "ws";
const client = new RingcastClient(`${scheme}://${location.host}/ws`);
let room;
let countdown;

function setStatus(kind, text) {
  const el = $("status");
  el.className = `status ${kind}`;
  el.textContent = text;
}

client.on("connecting", () => setStatus("connecting", "connecting…"));
client.on("connected", () => {
  clearInterval(countdown);
  setStatus("connected", "connected");
});
client.on("disconnected", ({ code, reconnectIn }) => {
  clearInterval(countdown);
  if (reconnectIn === null) return setStatus("closed", `closed (${code})`);
  const at = Date.now() + reconnectIn;
  const tick = () => {
    const left = Math.max(0, at - Date.now());
    setStatus("reconnecting", `reconnecting in ${(left / 1000).toFixed(1)} s (lost: ${code})`);
  };
  tick();
  countdown = setInterval(tick, 100);
});

function show(data, meta) {
  const li = document.createElement("li");
  const offset = document.createElement("span");
  offset.className = "offset";
  offset.textContent = `#${meta.offset}`;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = String(data?.user ?? "?");
  li.append(offset, who, document.createTextNode(String(data?.text ?? JSON.stringify(data))));
  const list = $("messages");
  list.append(li);
  list.scrollTop = list.scrollHeight;
}

function join(name) {
  if (room) void room.unsubscribe();
  $("messages").replaceChildren();
  room = client.subscribe(`chat:${name}`, {
    onMessage: show,
    onSubscribed: ({ resumed, recovered, offset }) => {
      $("resume").textContent = !resumed
        ? `joined chat:${name} (${offset} messages so far)`
        : recovered
          ? `resumed at #${offset}: nothing missed`
          : "resumed, but history no longer covers the gap: some messages were missed";
    },
    onGap: ({ epoch, previousEpoch, lastOffset, offset }) =>
      ($("resume").textContent =
        epoch !== previousEpoch
          ? "the room's history restarted: earlier messages may be missing"
          : `messages #${lastOffset + 1}–#${offset - 1} were lost on the way`),
    onError: (err) => ($("resume").textContent = `cannot join: ${err.code}`),
  });
  location.hash = name;
}

$("name").value = localStorage.getItem("ringcast-demo-name") ?? `guest${Math.floor(Math.random() * 1000)}`;
$("room").value = decodeURIComponent(location.hash.slice(1)) || "lobby";
$("join").addEventListener("submit", (e) => {
  e.preventDefault();
  localStorage.setItem("ringcast-demo-name", $("name").value);
  join($("room").value);
});
$("send").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value;
  if (!room || !text) return;
  $("text").value = "";
  client.publish(room.channel, { user: $("name").value, text }).catch((err) => {
    $("resume").textContent = `not sent: ${err.code}`;
  });
});

join($("room").value);
void client.connect();
