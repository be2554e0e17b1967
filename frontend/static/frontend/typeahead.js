/* The search box's typeahead as an ARIA combobox: htmx fills #suggestions with a listbox; this script keeps
 * aria-expanded and aria-activedescendant in step and adds the keys: Down/Up move through the options, Enter
 * opens the active one (or searches when none is active), Escape closes the list. */
(function () {
  "use strict";

  var input = document.querySelector('input[role="combobox"][aria-controls="suggestion-list"]');
  var holder = document.getElementById("suggestions");
  if (!input || !holder) return;
  var active = -1;

  function options() {
    return Array.prototype.slice.call(holder.querySelectorAll('[role="option"]'));
  }

  function list() {
    return holder.querySelector('[role="listbox"]');
  }

  function show(open) {
    var box = list();
    if (box) box.hidden = !open;
    input.setAttribute("aria-expanded", open && options().length ? "true" : "false");
    if (!open) mark(-1);
  }

  function mark(index) {
    var all = options();
    active = index;
    all.forEach(function (option, i) {
      option.setAttribute("aria-selected", i === index ? "true" : "false");
      option.classList.toggle("active", i === index);
    });
    if (index >= 0 && all[index]) {
      input.setAttribute("aria-activedescendant", all[index].id);
      all[index].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  // New suggestions arrived (htmx swapped them in).
  holder.addEventListener("htmx:afterSwap", function () {
    active = -1;
    show(options().length > 0);
  });

  input.addEventListener("keydown", function (event) {
    var all = options();
    var open = input.getAttribute("aria-expanded") === "true";
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (!all.length) return;
      event.preventDefault();
      if (!open) show(true);
      var step = event.key === "ArrowDown" ? 1 : -1;
      var next = active + step; // -1 is the box itself: Up from the first option goes back to typing
      if (next >= all.length) next = -1;
      if (next < -1) next = all.length - 1;
      mark(next);
    } else if (event.key === "Enter" && open && active >= 0 && all[active]) {
      event.preventDefault();
      window.location.href = all[active].querySelector("a").href;
    } else if (event.key === "Escape" && open) {
      event.preventDefault();
      show(false);
    }
  });

  input.addEventListener("blur", function () {
    // Let a click on an option land first.
    window.setTimeout(function () {
      show(false);
    }, 150);
  });
})();
