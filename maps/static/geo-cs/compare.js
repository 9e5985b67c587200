/* geo-cs compare page: keeps the place picker to four places and says how many are chosen.
   The page works without it (the form is a plain GET); the server refuses more than four in
   words all the same. No inline script: the page's Content-Security-Policy forbids it. */
(function () {
  'use strict';
  var form = document.getElementById('geo-cs-compare-form');
  if (!form) { return; }
  var most = Number(form.getAttribute('data-max')) || 4;
  var words = ['no', 'one', 'two', 'three', 'four', 'five', 'six'];
  var boxes = Array.prototype.slice.call(form.querySelectorAll('input[name="place"]'));
  var pasted = document.getElementById('geo-cs-compare-custom');
  var status = document.getElementById('geo-cs-compare-count');

  // what is pasted counts as one place per link or id (spaces or commas between them)
  function pastedCount() {
    var text = pasted ? pasted.value.trim() : '';
    if (!text) { return 0; }
    return text.split(/\s+/).reduce(function (n, part) {
      return n + (/[\/?]/.test(part) ? 1 : part.split(',').filter(Boolean).length);
    }, 0);
  }

  function update() {
    var ticked = boxes.filter(function (b) { return b.checked; }).length;
    var n = ticked + pastedCount();
    var full = n >= most;
    // at four, the unticked boxes rest: untick one to choose another (said in words below)
    boxes.forEach(function (b) { b.disabled = !b.checked && full; });
    var say;
    if (n === 0) { say = 'Tick two to ' + words[most] + ' places.'; }
    else if (n === 1) { say = 'One place chosen: choose at least one more to compare with it.'; }
    else if (n < most) { say = (words[n] || n) + ' places chosen; you can add ' + (words[most - n] || most - n) + ' more.'; }
    else if (n === most) { say = words[most] + ' places chosen, the most one comparison shows: untick one to choose another.'; }
    else { say = (words[n] || n) + ' places chosen: a comparison shows at most ' + words[most] + '. Untick some.'; }
    status.textContent = say.charAt(0).toUpperCase() + say.slice(1);
  }

  boxes.forEach(function (b) { b.addEventListener('change', update); });
  if (pasted) { pasted.addEventListener('input', update); }
  update();
}());
