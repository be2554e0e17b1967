// Grant countdowns: <time class="countdown" data-until="<epoch seconds>"> ticks once a minute (server renders the first text).
(function () {
  function text(seconds) {
    if (seconds <= 0) return "ended";
    var d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600), m = Math.floor((seconds % 3600) / 60);
    if (d) return d + " d " + h + " h left";
    if (h) return h + " h " + m + " min left";
    return Math.max(1, m) + " min left";
  }
  function tick() {
    var now = Date.now() / 1000;
    document.querySelectorAll("time.countdown[data-until]").forEach(function (el) {
      el.textContent = text(Math.floor(Number(el.dataset.until) - now));
    });
  }
  document.addEventListener("DOMContentLoaded", function () { tick(); setInterval(tick, 30000); });
})();
