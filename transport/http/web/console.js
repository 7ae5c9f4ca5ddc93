/* console.js - the administration console (/admin/) and the self-service page (/me/): plain DOM over the REST API
 * (/api/v1/), signed in with a session cookie whose CSRF token goes with every change. No data is ever written as
 * HTML: every value from the server is set as text. */
"use strict";

const API = "/api/v1/";
/* one page for both: /me/ shows only the account view */
const page = location.pathname.startsWith("/me") ? "me" : "admin";
let csrf = sessionStorage.getItem("ix-csrf") || "";
let me = null;

function $(sel) { return document.querySelector(sel); }

function say(text, bad) {
	const m = $("#message");
	m.textContent = text;
	m.classList.toggle("error", !!bad);
	m.hidden = !text;
}

/* A call of the API: JSON in and out; throws an Error with the API's sentence when it fails. */
async function api(method, path, body) {
	/* X-Requested-With: the API then sends no Basic challenge, which would open the browser's password dialog */
	const headers = { "Accept": "application/json", "X-Requested-With": "XMLHttpRequest" };
	if (method !== "GET") headers["X-CSRF-Token"] = csrf;
	if (body !== undefined) headers["Content-Type"] = "application/json";
	const r = await fetch(API + path, { method, headers, credentials: "same-origin",
		body: body !== undefined ? JSON.stringify(body) : undefined });
	const data = r.status === 204 ? {} : await r.json().catch(() => ({}));
	if (!r.ok) {
		const e = new Error(data.error || ("the server answered " + r.status));
		e.status = r.status;
		throw e;
	}
	return data;
}

function row(table, cells) {
	const tr = document.createElement("tr");
	for (const c of cells) {
		const td = document.createElement("td");
		td.textContent = c === undefined || c === null ? "" : String(c);
		tr.appendChild(td);
	}
	table.querySelector("tbody").appendChild(tr);
}

function clear(table) { table.querySelector("tbody").replaceChildren(); }

function show(view) {
	for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== view;
	for (const a of document.querySelectorAll("nav a")) a.classList.toggle("current", a.dataset.view === view);
}

/* ---- the console ---- */

async function search(q) {
	const r = await api("GET", "recipients?limit=100&q=" + encodeURIComponent(q || ""));
	clear($("#results"));
	for (const x of r.items) row($("#results"), [x.name, x.kind, x.login, x.mail]);
	$("#results-total").textContent = r.total + (r.total === 1 ? " recipient" : " recipients");
}

function age(seconds) {
	if (seconds < 120) return seconds + " s";
	if (seconds < 7200) return Math.round(seconds / 60) + " min";
	return Math.round(seconds / 3600) + " h";
}

async function queue() {
	const r = await api("GET", "queue?limit=200");
	clear($("#queue-list"));
	for (const m of r.items) {
		row($("#queue-list"), [m.id, age(m.age), m.sender || "<>",
			m.recipients.map((x) => x.address + " (" + x.state + (x.last_error ? ": " + x.last_error : "") + ")")
				.join(", ")]);
		const del = document.createElement("button");
		del.type = "button";
		del.textContent = "Delete";
		del.dataset.id = m.id;
		del.className = "delete";
		$("#queue-list tbody").lastChild.lastChild.appendChild(del);
	}
	$("#queue-total").textContent = r.total + (r.total === 1 ? " message" : " messages") + " to deliver";
}

/* The tracking log of the matching messages as one timeline per message, oldest event first. */
async function track(q) {
	const r = await api("GET", "track?q=" + encodeURIComponent(q));
	const box = $("#timelines");
	box.replaceChildren();
	const byMessage = new Map();
	for (const e of r.items) {
		const key = e.message_id || e.queue_id;
		if (!byMessage.has(key)) byMessage.set(key, []);
		byMessage.get(key).push(e);
	}
	if (byMessage.size === 0) box.textContent = "No message matches.";
	for (const [key, events] of byMessage) {
		const h = document.createElement("h3");
		h.textContent = key;
		const ol = document.createElement("ol");
		ol.className = "timeline";
		for (const e of events) {
			const li = document.createElement("li");
			const t = document.createElement("time");
			t.textContent = e.time;
			const what = document.createElement("strong");
			what.textContent = " " + e.event + " ";
			li.append(t, what, [e.sender && "from " + e.sender, e.recipient && "to " + e.recipient,
				e.server && "at " + e.server, e.detail].filter(Boolean).join(", "));
			ol.appendChild(li);
		}
		box.append(h, ol);
	}
}

async function audit() {
	const r = await api("GET", "audit?limit=200");
	clear($("#audit-log"));
	for (const e of r.items.slice().reverse())
		row($("#audit-log"), [e.time, e.who + " (" + e.via + ")", e.action + " " + e.target + ": " + e.result]);
}

async function route() {
	if (!me) return show("signin");
	const view = (location.hash || "#dashboard").slice(1);
	/* the views of the other scripts (recipients.js, me.js, infra.js), by the hash's first part: #recipient/NAME */
	const [base, ...arg] = view.split("/");
	const more = window.ixViews || {};
	try {
		if (page === "me") {
			show("account");
			if (more.account) await more.account();
		} else if (more[base]) {
			show(base);
			await more[base](decodeURIComponent(arg.join("/")));
		} else if (view === "recipients") {
			show("recipients");
			await search($("#search-form").q.value);
		} else if (view === "queue") {
			show("queue");
			await queue();
		} else if (view === "tracking") {
			show("tracking");
		} else if (view === "audit") {
			show("audit");
			await audit();
		} else {
			show("dashboard");
			await more.dashboard();
		}
	} catch (e) {
		if (e.status === 401) return signedOut();
		say(e.message, true);
	}
}

function signedIn(who) {
	me = who;
	$("#who").textContent = who.login + (who.role && who.role !== "none" ? " (" + who.role + ")" : "");
	$("#nav").hidden = false;
	route();
}

function signedOut() {
	me = null;
	csrf = "";
	sessionStorage.removeItem("ix-csrf");
	$("#nav").hidden = true;
	show("signin");
}

if (page === "me") {
	for (const e of document.querySelectorAll(".admin-only")) e.hidden = true;
	$("#title").textContent = "My account";
	document.title = "My account - Interchange";
}

$("#signin-form").addEventListener("submit", async (ev) => {
	ev.preventDefault();
	const f = ev.target;
	try {
		const r = await api("POST", "session", { login: f.login.value, password: f.password.value });
		csrf = r.csrf;
		sessionStorage.setItem("ix-csrf", csrf);
		f.password.value = "";
		say("");
		signedIn(r);
	} catch (e) {
		say(e.message, true);
	}
});

$("#signout").addEventListener("click", async () => {
	try { await api("DELETE", "session"); } catch (e) { /* signed out either way */ }
	say("You are signed out.");
	signedOut();
});

if (page === "admin") {
	window.addEventListener("hashchange", route);
	$("#search-form").addEventListener("submit", (ev) => {
		ev.preventDefault();
		search(ev.target.q.value).catch((e) => say(e.message, true));
	});
	$("#flush").addEventListener("click", async () => {
		try {
			const r = await api("POST", "queue/flush", {});
			say("Flushed: " + r.flush + ".");
			await queue();
		} catch (e) {
			say(e.message, true);
		}
	});
	$("#queue-list").addEventListener("click", async (ev) => {
		const id = ev.target.dataset && ev.target.dataset.id;
		if (!id) return;
		try {
			await api("DELETE", "queue/" + encodeURIComponent(id));
			say("Deleted " + id + " from the queue.");
			await queue();
		} catch (e) {
			say(e.message, true);
		}
	});
	$("#track-form").addEventListener("submit", (ev) => {
		ev.preventDefault();
		track(ev.target.q.value).catch((e) => say(e.message, true));
	});
	$("#user-form").addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const f = ev.target;
		const aliases = f.aliases.value.split(/\s+/).filter(Boolean);
		try {
			await api("POST", "users", { login: f.login.value, given: f.given.value, surname: f.surname.value,
				password: f.password.value, aliases });
			say("Created user " + f.login.value + ".");
			$("#search-form").q.value = f.login.value;
			f.reset();
			await search($("#search-form").q.value);
		} catch (e) {
			say(e.message, true);
		}
	});
} else {
	$("#password-form").addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const f = ev.target;
		if (f.password.value !== f.again.value) return say("The two passwords differ.", true);
		try {
			await api("PATCH", "users/" + encodeURIComponent(me.login), { old_password: f.old.value,
				password: f.password.value });
			f.reset();
			say("Your password is changed.");
		} catch (e) {
			say(e.message, true);
		}
	});
}

/* a session from before a reload, once the other scripts (recipients.js, me.js) have added their views */
document.addEventListener("DOMContentLoaded", () => api("GET", "session")
	.then((who) => { if (csrf) signedIn(who); else signedOut(); }).catch(() => signedOut()));
