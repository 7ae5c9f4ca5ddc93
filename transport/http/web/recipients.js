/* recipients.js - the console's page of one recipient (/admin/#recipient/NAME), of any kind: its addresses (the
 * primary and the others), whether the address book hides it, forwarding, who may send to it, delegates, a user's
 * quota and a list's members, each changed with PATCH /api/v1/recipients/NAME; and the form that makes contacts,
 * lists and public folders. It uses console.js's api(), say(), row() and clear(); every value is set as text. */
"use strict";

window.ixViews = window.ixViews || {};
let shown = null; /* the recipient on the page, as the API last answered */

function words(s) { return s.split(/[\s,]+/).filter(Boolean); }

/* a button in the last cell of the table's last row */
function rowButton(table, text, data) {
	const b = document.createElement("button");
	b.type = "button";
	b.className = "small";
	b.textContent = text;
	Object.assign(b.dataset, data);
	const tr = table.querySelector("tbody").lastChild;
	const td = document.createElement("td");
	td.appendChild(b);
	tr.appendChild(td);
}

function recipientKey(r) { return r.login || r.name; }

function fillRecipient(r) {
	shown = r;
	$("#r-name").textContent = r.display_name || r.name;
	$("#r-kind").textContent = r.kind + (r.login ? " " + r.login : "");
	$("#r-summary").textContent = r.mail ? "Mail to " + r.mail + " reaches it." : "It has no address yet.";
	for (const e of document.querySelectorAll("#recipient .user-only")) e.hidden = r.kind !== "user";
	for (const e of document.querySelectorAll("#recipient .list-only")) e.hidden = r.kind !== "list";
	clear($("#r-addresses"));
	for (const a of r.addresses) {
		const primary = a.startsWith("SMTP:"), address = a.slice(5);
		row($("#r-addresses"), [address]);
		if (primary) {
			const td = document.createElement("td");
			td.textContent = "primary";
			$("#r-addresses tbody").lastChild.appendChild(td);
		} else {
			rowButton($("#r-addresses"), "Make primary", { primary: address });
			rowButton($("#r-addresses"), "Remove", { remove: address });
		}
	}
	$("#r-hidden-form").hidden.checked = !!r.hidden;
	const f = $("#r-forward-form");
	f.to.value = (r.forward && r.forward.to) || "";
	f.keep.checked = !!(r.forward && r.forward.keep_copy);
	const rs = r.restrictions || {}, g = $("#r-restrict-form");
	g.accept.value = (rs.accept_from || []).join(" ");
	g.reject.value = (rs.reject_from || []).join(" ");
	g.auth.checked = !!rs.authenticated_only;
	g.members.checked = !!rs.members_only;
	g.max.value = rs.max_size || 0;
	clear($("#r-delegates"));
	const d = r.delegates || {};
	for (const [right, label] of [["send_as", "Send as"], ["send_on_behalf", "Send on behalf"],
		["full_access", "Full access"]]) {
		for (const who of d[right] || []) {
			row($("#r-delegates"), [who, label]);
			rowButton($("#r-delegates"), "Revoke", { revoke: who, right });
		}
	}
	if (r.kind === "user") {
		for (const [k, v] of Object.entries(r.details)) $("#r-details-form")[k].value = v || "";
		const q = $("#r-quota-form");
		q.bytes.value = r.quota.bytes;
		q.messages.value = r.quota.messages;
		q.warn.value = r.quota.warn_bytes;
		$("#r-mailbox").textContent = r.mailbox ? "The mailbox holds " + r.mailbox.messages + " messages, " +
			r.mailbox.bytes + " bytes (limits in force: " + (r.mailbox.quota_bytes || "no") + " bytes, " +
			(r.mailbox.quota_messages || "no") + " messages)." : "";
	}
	clear($("#r-members"));
	for (const m of r.members || []) {
		row($("#r-members"), [m]);
		rowButton($("#r-members"), "Remove", { member: m });
	}
}

async function showRecipient(name) {
	fillRecipient(await api("GET", "recipients/" + encodeURIComponent(name)));
}
window.ixViews.recipient = showRecipient;

/* A change of the recipient on the page; the page then shows it as the API answers. */
async function change(body, done) {
	try {
		fillRecipient(await api("PATCH", "recipients/" + encodeURIComponent(recipientKey(shown)), body));
		say(done);
	} catch (e) {
		say(e.message, true);
	}
}

function onSubmit(sel, fn) {
	$(sel).addEventListener("submit", (ev) => {
		ev.preventDefault();
		fn(ev.target);
	});
}

if (!location.pathname.startsWith("/me")) {
	$("#results").addEventListener("click", (ev) => {
		const tr = ev.target.closest("tbody tr");
		if (!tr) return;
		const [name, , login, mail] = Array.from(tr.cells, (c) => c.textContent);
		location.hash = "#recipient/" + encodeURIComponent(login || mail || name);
	});
	$("#r-addresses").addEventListener("click", (ev) => {
		const b = ev.target.dataset || {};
		if (b.primary) change({ addresses: { primary: b.primary } }, b.primary + " is the primary address now.");
		if (b.remove) change({ addresses: { remove: [b.remove] } }, "Removed " + b.remove + ".");
	});
	onSubmit("#r-alias-form", (f) => change({ addresses: { add: [f.address.value] } }, "Added " + f.address.value +
		".").then(() => f.reset()));
	onSubmit("#r-hidden-form", (f) => change({ hidden: f.hidden.checked }, f.hidden.checked ?
		"Hidden from the address book." : "Shown in the address book."));
	onSubmit("#r-forward-form", (f) => change({ forward: { to: f.to.value || null, keep_copy: f.keep.checked } },
		f.to.value ? "Mail is forwarded to " + f.to.value + "." : "Mail is not forwarded."));
	onSubmit("#r-restrict-form", (f) => {
		const r = { clear: true, accept_from: words(f.accept.value), reject_from: words(f.reject.value),
			authenticated_only: f.auth.checked, max_size: Number(f.max.value || 0) };
		if (shown.kind === "list") r.members_only = f.members.checked;
		change({ restrictions: r }, "Saved who may send.");
	});
	onSubmit("#r-delegate-form", (f) => change({ delegates: { grant: [{ to: f.to.value, right: f.right.value }] } },
		f.to.value + " has the right now.").then(() => f.reset()));
	$("#r-delegates").addEventListener("click", (ev) => {
		const b = ev.target.dataset || {};
		if (b.revoke) change({ delegates: { revoke: [{ to: b.revoke, right: b.right }] } }, b.revoke + " lost the right.");
	});
	onSubmit("#r-details-form", (f) => {
		const d = {};
		for (const k of ["title", "department", "company", "office", "phone", "mobile", "manager"]) d[k] = f[k].value;
		change(d, "Saved the details.");
	});
	onSubmit("#r-quota-form", (f) => change({ quota: { bytes: Number(f.bytes.value || 0),
		messages: Number(f.messages.value || 0), warn_bytes: Number(f.warn.value || 0) } }, "Saved the quota."));
	onSubmit("#r-member-form", async (f) => {
		try {
			await api("POST", "lists/" + encodeURIComponent(shown.name) + "/members", { recipient: f.recipient.value });
			f.reset();
			await showRecipient(shown.name);
			say("Added a member.");
		} catch (e) {
			say(e.message, true);
		}
	});
	$("#r-members").addEventListener("click", async (ev) => {
		const m = ev.target.dataset && ev.target.dataset.member;
		if (!m) return;
		try {
			await api("DELETE", "lists/" + encodeURIComponent(shown.name) + "/members/" + encodeURIComponent(m));
			await showRecipient(shown.name);
			say("Removed " + m + ".");
		} catch (e) {
			say(e.message, true);
		}
	});
	$("#r-delete").addEventListener("click", async () => {
		try {
			await api("DELETE", "recipients/" + encodeURIComponent(recipientKey(shown)));
			say("Deleted " + shown.name + ".");
			location.hash = "#recipients";
		} catch (e) {
			say(e.message, true);
		}
	});
	onSubmit("#other-form", async (f) => {
		const kind = f.kind.value, name = f.name.value, more = f.more.value;
		const body = kind === "contacts" ? { name, email: more } : kind === "lists" ? { name, members: words(more) }
			: { path: name };
		try {
			const r = await api("POST", kind, body);
			f.reset();
			location.hash = "#recipient/" + encodeURIComponent(r.name);
		} catch (e) {
			say(e.message, true);
		}
	});
}
