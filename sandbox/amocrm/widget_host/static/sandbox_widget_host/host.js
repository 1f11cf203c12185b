/*
 * The sandbox stand-in for amoCRM's front end: just enough of it to run our widget as amoCRM
 * does (a minimal AMD define/require, APP/AMOCRM globals, the widget object's helpers, a card
 * with phone numbers whose «Позвонить» action the widget can take over).
 */
(function () {
  'use strict';
  var config = JSON.parse(document.getElementById('host-config').textContent);
  var $ = window.jQuery;
  var modules = {jquery: $};
  var pending = null;
  var actions = {};

  window.define = function (deps, factory) {
    if (typeof deps === 'function') {
      factory = deps;
      deps = [];
    }
    pending = {deps: deps, factory: factory};
  };
  window.define.amd = {};
  window.require = function (deps, callback) {
    callback.apply(null, $.map(deps, function (name) { return [modules[name]]; }));
  };

  function note(kind, header, text) {
    var item = $('<div class="host-note"></div>').addClass('host-note--' + kind)
      .attr('data-kind', kind);
    $('<strong></strong>').text(header || '').appendTo(item);
    $('<span></span>').text(' ' + (text || '')).appendTo(item);
    item.appendTo('#host-notifications');
  }

  window.APP = window.AMOCRM = {
    constant: function (name) {
      return {user: config.user, account: config.account}[name];
    },
    lang_id: config.lang,
    notifications: {
      show_message_error: function (o) { note('error', o.header, o.text); },
      show_message: function (o) { note('info', o.header, o.text); },
      add_call: function (o) { note('call', o.header || o.from, o.text); }
    }
  };

  function WidgetBase() {}
  WidgetBase.prototype.system = function () {
    return {area: config.area, amouser_id: config.user.id, subdomain: config.account.subdomain};
  };
  WidgetBase.prototype.get_settings = function () {
    return {widget_code: 'beetel_beeline_call'};
  };
  WidgetBase.prototype.i18n = function (key) {
    return config.langs[key];
  };
  WidgetBase.prototype.add_action = function (type, handler) {
    actions[type] = handler;
  };
  // amoCRM asks its back end for a fresh disposable token and sends it as X-Auth-Token.
  WidgetBase.prototype.$authorizedAjax = function (options) {
    return $.getJSON(config.tokenUrl).then(function (data) {
      var headers = $.extend({}, options.headers || {}, {'X-Auth-Token': data.token});
      return $.ajax($.extend({}, options, {headers: headers}));
    }, function (xhr) {
      if (options.error) { options.error(xhr); }
    });
  };

  function start() {
    var Widget = pending.factory.apply(null, $.map(pending.deps, function (n) { return [modules[n]]; }));
    var widget = Object.create(WidgetBase.prototype);
    widget.langs = config.langs;
    widget.params = {widget_code: 'beetel_beeline_call', path: ''};
    Widget.call(widget);
    // amoCRM's order: render, then init and bind_actions (once, with init_once).
    widget.callbacks.render.call(widget);
    widget.callbacks.init.call(widget);
    widget.callbacks.bind_actions.call(widget);
    window.beetelWidget = widget;
    $('body').attr('data-widget-ready', '1');
  }

  $(document).on('click', '[data-phone]', function (event) {
    event.preventDefault();
    var value = $(this).attr('data-phone');
    if (actions.phone) {
      actions.phone({value: value});
    } else {
      note('info', 'Позвонить', value);
    }
  });

  var script = document.createElement('script');
  script.src = config.scriptUrl;
  script.onload = start;
  script.onerror = function () { note('error', 'Виджет', 'script.js не загрузился'); };
  document.head.appendChild(script);
})();
