/* danlu chat bubble: add a published app to any web page.
 *   <script src="https://your-danlu/widget.js" data-app="APP-SLUG" defer></script>
 * Optional: data-position="left", data-color="#b4472c", data-title="Ask us".
 * The chat itself runs in an iframe of the app's public page, so this page never sees it. */
(function () {
  var script = document.currentScript;
  if (!script || !script.dataset.app) {
    console.error("danlu widget: add data-app=\"APP-SLUG\" to the script tag");
    return;
  }
  var origin = new URL(script.src, location.href).origin;
  var slug = encodeURIComponent(script.dataset.app);
  var color = script.dataset.color || "#b4472c";
  var side = script.dataset.position === "left" ? "left" : "right";
  var title = script.dataset.title || "Chat";

  var button = document.createElement("button");
  button.type = "button";
  button.setAttribute("aria-label", title);
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("data-danlu-widget", "button");
  button.textContent = "\u{1F4AC}";
  button.style.cssText =
    "position:fixed;bottom:20px;" + side + ":20px;width:56px;height:56px;border-radius:50%;border:none;" +
    "background:" + color + ";color:#fff;font-size:24px;cursor:pointer;box-shadow:0 4px 16px rgba(0,0,0,.25);z-index:2147483646";

  var frame = null;
  function toggle() {
    if (!frame) {
      frame = document.createElement("iframe");
      frame.src = origin + "/s/" + slug + "?embed=1";
      frame.title = title;
      frame.setAttribute("data-danlu-widget", "frame");
      frame.style.cssText =
        "position:fixed;bottom:88px;" + side + ":20px;width:min(380px,calc(100vw - 40px));height:min(560px,calc(100vh - 120px));" +
        "border:1px solid #ddd;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.2);background:#fff;z-index:2147483647";
      document.body.appendChild(frame);
    } else {
      frame.style.display = frame.style.display === "none" ? "block" : "none";
    }
    button.setAttribute("aria-expanded", frame.style.display === "none" ? "false" : "true");
  }
  button.addEventListener("click", toggle);
  function mount() {
    document.body.appendChild(button);
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
