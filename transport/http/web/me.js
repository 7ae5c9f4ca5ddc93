/* me.js - the self-service page (/me/) beyond the password: out of office, forwarding, app passwords (the secret
 * shown once) and recent sign-ins, through /api/v1/me/. It uses console.js's api(), say(), row() and clear(); every
 * value is set as text. */
"use strict";

window.ixViews = window.ixViews || {};

async function loadOof() {
	const o = await api("GET", "me/oof"), f = $("#oof-form");
	f.enabled.checked = o.enabled;
	f.internal.value = o.internal || "";
	f.external.value = o.external || "";
	f.audience.value = o.audience || "all";
	f.from.value = o.from || "";
	f.until.value = o.until || "";
	f.dataset.loaded = "1"; /* what is shown is what is set: changes made from here on are not overwritten */
}

async function loadForward() {
	const r = await api("GET", "me"), f = $("#me-forward-form");
	f.to.value = (r.forward && r.forward.to) || "";
	f.keep.checked = !!(r.forward && r.forward.keep_copy);
}

async function loadAppPasswords() {
	const r = await api("GET", "me/app-passwords");
	clear($("#app-passwords"));
	for (const a of r.items) {
		row($("#app-passwords"), [a.name, a.created]);
		const b = document.createElement("button");
		b.type = "button";
		b.className = "small";
		b.textContent = "Revoke";
		b.dataset.name = a.name;
		const td = document.createElement("td");
		td.appendChild(b);
		$("#app-passwords tbody").lastChild.appendChild(td);
	}
}

async function loadSignins() {
	const r = await api("GET", "me/signins?limit=20");
	clear($("#signins"));
	for (const s of r.items) row($("#signins"), [s.time.replace("T", " ").replace(/\.\d+Z$/, ""), s.service, s.from,
		s.result === "ok" ? "signed in" : "failed"]);
}

window.ixViews.account = async function () {
	$("#app-secret").hidden = true;
	delete $("#oof-form").dataset.loaded;
	await Promise.all([loadOof(), loadForward(), loadAppPasswords(), loadSignins()]);
};

if (location.pathname.startsWith("/me")) {
	$("#oof-form").addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const f = ev.target;
		try {
			await api("PUT", "me/oof", { enabled: f.enabled.checked, internal: f.internal.value,
				external: f.external.value, audience: f.audience.value, from: f.from.value, until: f.until.value });
			say(f.enabled.checked ? "Out of office is on." : "Out of office is off.");
			await loadOof();
		} catch (e) {
			say(e.message, true);
		}
	});
	$("#me-forward-form").addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const f = ev.target;
		try {
			await api("PATCH", "me", { forward: { to: f.to.value || null, keep_copy: f.keep.checked } });
			say(f.to.value ? "Your mail is forwarded to " + f.to.value + "." : "Your mail is not forwarded.");
		} catch (e) {
			say(e.message, true);
		}
	});
	$("#app-form").addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const f = ev.target;
		try {
			const r = await api("POST", "me/app-passwords", { name: f.name.value });
			f.reset();
			$("#app-secret code").textContent = r.password;
			$("#app-secret").hidden = false;
			say("Made the app password " + r.name + ": type it into the program now, it is not shown again.");
			await loadAppPasswords();
		} catch (e) {
			say(e.message, true);
		}
	});
	$("#app-passwords").addEventListener("click", async (ev) => {
		const name = ev.target.dataset && ev.target.dataset.name;
		if (!name) return;
		try {
			await api("DELETE", "me/app-passwords/" + encodeURIComponent(name));
			say("Revoked the app password " + name + ".");
			await loadAppPasswords();
		} catch (e) {
			say(e.message, true);
		}
	});
}
