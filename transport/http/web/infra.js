/* infra.js - the console's views of the organisation's infrastructure over the REST API: the dashboard (services,
 * queue, the mail flow's graphs from GET /metrics, certificate, replication, warnings), servers and their settings,
 * connectors, sync sources, DKIM keys and the services' logs. Loaded after console.js, whose helpers (api, row,
 * clear, say, age) it uses and whose router shows the views it adds to window.ixViews. */
"use strict";

/* in a function of its own: its names stay out of the other scripts' way */
(() => {
	const views = window.ixViews = window.ixViews || {};

	function cell(text) {
		const td = document.createElement("td");
		td.textContent = text === undefined || text === null ? "" : String(text);
		return td;
	}

	function actionButton(label, data, cls) {
		const b = document.createElement("button");
		b.type = "button";
		b.textContent = label;
		Object.assign(b.dataset, data);
		if (cls) b.className = cls;
		return b;
	}

	function listItems(ul, texts) {
		ul.replaceChildren();
		for (const t of texts) {
			const li = document.createElement("li");
			li.textContent = t;
			ul.appendChild(li);
		}
	}

	views.dashboard = async () => {
		const [st, m] = await Promise.all([api("GET", "status"), api("GET", "metrics")]);
		clear($("#services"));
		for (const s of st.services)
			row($("#services"), [s.name, s.state, s.pid || "", s.pid ? age(s.uptime) : "", s.restarts]);
		$("#queue-length").textContent = st.queue.active + " active, " + st.queue.deferred + " deferred" +
			(st.queue.active + st.queue.deferred ? ", the oldest " + age(st.queue.oldest_age) : "");
		const c = st.certificate;
		$("#cert").textContent = c.days_left < 0 ? "the certificate cannot be read" :
			"valid until " + c.not_after + " (" + c.days_left + " days)";
		$("#cert").classList.toggle("bad", c.days_left < 30);
		const repl = st.replication.map((r) => r.server + ": " + r.state + (r.replicating ? "" : " (not replicating from it)"));
		listItems($("#replication"), [(st.directory.replica_connected ? "replica connected, " : "replica NOT connected, ") +
			st.directory.recipients + " recipients, " + st.directory.changes + " changes"].concat(
			repl.length ? repl : ["no other server in the organisation"]));
		listItems($("#warnings"), st.warnings.length ? st.warnings : ["none"]);
		$("#warnings").classList.toggle("bad", st.warnings.length > 0);
		const h = m.history;
		drawGraph($("#graph-rate"), h.samples.map((s) => [s.time, s.delivered * 60 / s.seconds]), "per min");
		drawGraph($("#graph-latency"), h.samples.map((s) => [s.time, s.latency_avg]), "s");
		drawGraph($("#graph-queue"), h.samples.map((s) => [s.time, s.queue]), "messages");
		const roles = await api("GET", "roles");
		clear($("#roles"));
		for (const [name, members] of Object.entries(roles.roles))
			row($("#roles"), [name, members.join(", ")]);
		$("#flow-totals").textContent = "Since the attendant started: " + h.totals.received + " received, " +
			h.totals.delivered + " delivered, " + h.totals.deferred + " deferred, " + h.totals.bounced + " bounced.";
	};

	views.servers = async () => {
		const r = await api("GET", "servers");
		clear($("#server-list"));
		for (const s of r.items) {
			row($("#server-list"), [s.name, s.host, Object.entries(s.ports).filter(([, p]) => p)
				.map(([k, p]) => k + " " + p).join(", ")]);
			$("#server-list tbody").lastChild.appendChild(cell(""));
			$("#server-list tbody").lastChild.lastChild.appendChild(actionButton("Settings", { server: s.name }));
		}
		if (r.items.length && !$("#settings-form").server.value) await serverSettings(r.items[0].name);
	};

	async function serverSettings(name) {
		const s = await api("GET", "servers/" + encodeURIComponent(name));
		$("#settings-title").textContent = "Settings of " + s.name;
		$("#settings-form").server.value = s.name;
		clear($("#settings"));
		for (const [k, v] of Object.entries(s.settings)) row($("#settings"), [k, v]);
	}

	views.connectors = async () => {
		const r = await api("GET", "connectors?limit=1000");
		clear($("#connector-list"));
		for (const c of r.items) {
			row($("#connector-list"), [c.name, c.address_spaces.join(", "), c.smarthost, c.cost]);
			$("#connector-list tbody").lastChild.appendChild(cell(""));
			$("#connector-list tbody").lastChild.lastChild.appendChild(
				actionButton("Delete", { connector: c.name }, "delete"));
		}
		if (!r.items.length) row($("#connector-list"), ["none: mail for other domains goes to their MX hosts"]);
	};

	views.sync = async () => {
		const r = await api("GET", "sync?limit=1000");
		clear($("#sync-list"));
		for (const s of r.items) {
			const n = s.counts || {};
			row($("#sync-list"), [s.name, s.type, s.uri, s.state, (n.users || 0) + " users, " + (n.lists || 0) + " lists, " +
				(n.conflicts || 0) + " conflicts, " + (n.errors || 0) + " errors", s.last_run]);
			const td = cell("");
			td.append(actionButton("Run now", { run: s.name }), " ", actionButton("Delete", { source: s.name }, "delete"));
			$("#sync-list tbody").lastChild.appendChild(td);
		}
		if (!r.items.length) row($("#sync-list"), ["no sync sources"]);
	};

	views.dkim = async () => {
		const r = await api("GET", "dkim?limit=1000");
		clear($("#dkim-list"));
		for (const k of r.items)
			row($("#dkim-list"), [k.domain, k.selector, k.algorithm, k.this_server ? "this server" : "another server",
				k.zone_line]);
		if (!r.items.length) row($("#dkim-list"), ["no DKIM keys yet"]);
	};

	views.logs = async () => {
		const r = await api("GET", "logs");
		const sel = $("#log-form").name;
		const current = sel.value || "attendant";
		sel.replaceChildren();
		for (const l of r.items) {
			const o = document.createElement("option");
			o.value = o.textContent = l.name;
			sel.appendChild(o);
		}
		sel.value = current;
		await showLog();
	};

	async function showLog() {
		const f = $("#log-form");
		const r = await api("GET", "logs/" + encodeURIComponent(f.name.value) + "?lines=" +
			encodeURIComponent(f.lines.value || "200") + (f.q.value ? "&q=" + encodeURIComponent(f.q.value) : ""));
		$("#log-lines").textContent = r.lines.join("\n");
		$("#log-total").textContent = r.total + (r.total === 1 ? " line" : " lines");
	}

	/* Runs fn (a change), says what it did or why not, and shows the view again. */
	async function change(fn, view) {
		try {
			say(await fn());
			await views[view]();
		} catch (e) {
			say(e.message, true);
		}
	}

	if (page === "admin") {
		$("#server-list").addEventListener("click", (ev) => {
			if (ev.target.dataset.server) serverSettings(ev.target.dataset.server).catch((e) => say(e.message, true));
		});
		$("#settings-form").addEventListener("submit", (ev) => {
			ev.preventDefault();
			const f = ev.target, body = {};
			body[f.setting.value] = /^-?\d+$/.test(f.value.value) ? Number(f.value.value) : f.value.value;
			change(async () => {
				await api("PATCH", "servers/" + encodeURIComponent(f.server.value) + "/settings", body);
				await serverSettings(f.server.value);
				return "Changed " + f.setting.value + " of " + f.server.value + ".";
			}, "servers");
		});
		$("#connector-form").addEventListener("submit", (ev) => {
			ev.preventDefault();
			const f = ev.target;
			change(async () => {
				await api("POST", "connectors", { name: f.name.value, smarthost: f.smarthost.value,
					address_spaces: f.spaces.value.split(/[\s,]+/).filter(Boolean), cost: Number(f.cost.value || 0) });
				const name = f.name.value;
				f.reset();
				return "Added connector " + name + ".";
			}, "connectors");
		});
		$("#connector-list").addEventListener("click", (ev) => {
			const name = ev.target.dataset.connector;
			if (name) change(async () => {
				await api("DELETE", "connectors/" + encodeURIComponent(name));
				return "Deleted connector " + name + ".";
			}, "connectors");
		});
		$("#sync-list").addEventListener("click", (ev) => {
			const run = ev.target.dataset.run, del = ev.target.dataset.source;
			if (run) change(async () => {
				const r = await api("POST", "sync/" + encodeURIComponent(run) + "/run", {});
				return "Synced " + run + ": " + r.added + " added, " + r.changed + " changed, " + r.deleted + " deleted.";
			}, "sync");
			if (del) change(async () => {
				await api("DELETE", "sync/" + encodeURIComponent(del) + "?keep=true");
				return "Deleted sync source " + del + "; its recipients stay as local ones.";
			}, "sync");
		});
		$("#dkim-form").addEventListener("submit", (ev) => {
			ev.preventDefault();
			const f = ev.target;
			change(async () => {
				const r = await api("POST", "dkim/" + encodeURIComponent(f.domain.value), { rotate: f.rotate.checked });
				return (r.made ? "Made new DKIM keys for " : "This server has keys for ") + r.domain +
					": publish their TXT records.";
			}, "dkim");
		});
		$("#log-form").addEventListener("submit", (ev) => {
			ev.preventDefault();
			showLog().catch((e) => say(e.message, true));
		});
	}
})();
