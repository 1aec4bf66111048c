// A button with data-confirm asks before it submits its form. A file, not an onclick
// attribute: the Content-Security-Policy runs no inline script.
"use strict";
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});
