/* graphs.js - line graphs as inline SVG for the console's dashboard, drawn here from numbers (no library, nothing
 * fetched): an area under a line, the axes' extremes as text, the last value named. */
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function svgElement(name, attrs) {
	const e = document.createElementNS(SVG, name);
	for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
	return e;
}

/* Draws points ([[time, value], ...], oldest first, one an interval) into the <svg> svg: the graph's scale from 0 to
 * the largest value, the times of the first and last along the bottom. The svg carries data-points and data-max for whoever reads it (the tests). */
function drawGraph(svg, points, unit) {
	const W = 320, H = 160, L = 40, R = 8, T = 12, B = 22;
	svg.setAttribute("viewBox", "0 0 " + W + " " + H);
	svg.replaceChildren();
	const max = Math.max(0, ...points.map((p) => p[1]));
	const top = max > 0 ? max * 1.1 : 1;
	/* one sample an interval: evenly spaced, the oldest at the left */
	const t0 = points.length ? points[0][0] : 0, t1 = points.length ? points[points.length - 1][0] : 1;
	const x = (i) => L + (points.length > 1 ? i / (points.length - 1) : 1) * (W - L - R);
	const y = (v) => T + (1 - v / top) * (H - T - B);
	svg.append(svgElement("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }),
		svgElement("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
	const label = (tx, ty, text, anchor) => {
		const e = svgElement("text", { x: tx, y: ty, "text-anchor": anchor || "start", class: "label" });
		e.textContent = text;
		svg.appendChild(e);
	};
	const fmt = (v) => (Math.round(v * 100) / 100).toString();
	label(L - 4, T + 8, fmt(top), "end");
	label(L - 4, H - B, "0", "end");
	if (points.length) {
		const clock = (t) => new Date(t * 1000).toISOString().slice(11, 16);
		label(L, H - 6, clock(t0));
		label(W - R, H - 6, clock(t1) + " UTC", "end");
		const line = points.map((p, i) => x(i).toFixed(1) + "," + y(p[1]).toFixed(1)).join(" ");
		svg.append(svgElement("polygon", { points: x(0).toFixed(1) + "," + y(0) + " " + line + " " +
			x(points.length - 1).toFixed(1) + "," + y(0), class: "area" }),
			svgElement("polyline", { points: line, class: "line" }));
		label(W - R, T + 8, "now " + fmt(points[points.length - 1][1]) + " " + unit, "end");
	} else {
		label(W / 2, H / 2, "no samples yet", "middle");
	}
	svg.dataset.points = String(points.length);
	svg.dataset.max = String(max);
}
