// The admin's language switch submits itself when a language is chosen (the button inside
// <noscript> does it without JavaScript). A file, not an onchange attribute: the
// Content-Security-Policy runs no inline script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const select of document.querySelectorAll("select[data-submit-on-change]")) {
    select.addEventListener("change", () => select.form.submit());
  }
});
