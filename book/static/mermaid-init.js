// Draws each Mermaid diagram of the page (<pre class="mermaid">) as an inline SVG.
// Loaded with "defer" after mermaid.min.js, so the page is parsed and `mermaid` is defined.
// A diagram that does not parse is drawn as Mermaid's error picture and reported on the console.
mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: "neutral" });
mermaid.run({ querySelector: "pre.mermaid" }).catch((error) => {
  throw new Error(`Mermaid could not draw a diagram: ${error?.message ?? error?.str ?? error}`);
});
