/*
 * «Звонок Beeline» — the amoCRM widget of Beetel Integration (AMD module, docs/amocrm-api.md §9).
 *
 * On card pages it asks our backend for the connection status and shows the card
 * «Соединение установлено» (manager's name, «Рабочий телефон: …») or an error card saying what
 * is wrong; it takes over the «Позвонить» action of phone numbers (click-to-call).
 * Every request goes through amoCRM's self.$authorizedAjax, which adds the disposable JWT
 * (X-Auth-Token) our backend verifies. BACKEND is baked in by `manage.py build_widget`.
 */
define(['jquery'], function ($) {
  'use strict';

  var BACKEND = '__BEETEL_PUBLIC_URL__';
  var CARD_ID = 'beetel-status-card';
  var CARD_AREAS = ['ccard', 'lcard', 'comcard', 'cucard'];
  var FALLBACK = {
    connected: 'Соединение установлено',
    work_phone: 'Рабочий телефон:',
    not_connected: 'Нет соединения с Beeline',
    loading: 'Проверяем соединение…',
    calling: 'Звоним: сначала зазвонит ваш рабочий телефон',
    call_failed: 'Не удалось позвонить',
    close: 'Закрыть',
    network: 'Сервер Beetel недоступен. Проверьте интернет и обновите страницу.'
  };

  return function () {
    var self = this;

    function t(key) {
      var section = (self.langs && self.langs.messages) || {};
      return section[key] || FALLBACK[key] || key;
    }

    // A message for an error answer: ours by code when we have one, else the server's text.
    function errorText(body, fallbackKey) {
      body = body || {};
      var section = (self.langs && self.langs.messages) || {};
      return section[body.code] || body.message || t(fallbackKey);
    }

    function area() {
      try {
        return (self.system && self.system().area) || '';
      } catch (e) {
        return '';
      }
    }

    function isCard() {
      return CARD_AREAS.indexOf(area()) !== -1;
    }

    function cardStyle() {
      if (document.getElementById('beetel-card-style')) {
        return;
      }
      var css = '#' + CARD_ID + '{position:fixed;right:20px;bottom:20px;z-index:10000;' +
        'min-width:260px;max-width:340px;padding:14px 36px 14px 16px;border-radius:6px;' +
        'background:#fff;box-shadow:0 4px 18px rgba(0,0,0,.18);font:14px/1.4 Arial,sans-serif;' +
        'color:#222;border-left:6px solid #ffbe00}' +
        '#' + CARD_ID + '.beetel-card--error{border-left-color:#d0312d}' +
        '#' + CARD_ID + ' .beetel-card__title{font-weight:bold;margin-bottom:4px}' +
        '#' + CARD_ID + ' .beetel-card__close{position:absolute;top:6px;right:8px;border:0;' +
        'background:none;font-size:18px;cursor:pointer;color:#888}';
      $('<style id="beetel-card-style"></style>').text(css).appendTo('head');
    }

    function showCard(kind, title, lines) {
      cardStyle();
      $('#' + CARD_ID).remove();
      var card = $('<div></div>')
        .attr({id: CARD_ID, role: 'status', 'data-state': kind})
        .addClass('beetel-card beetel-card--' + kind);
      $('<button type="button" class="beetel-card__close">&times;</button>')
        .attr('aria-label', t('close'))
        .on('click', function () { card.remove(); })
        .appendTo(card);
      $('<div class="beetel-card__title"></div>').text(title).appendTo(card);
      $.each(lines, function (_, line) {
        $('<div class="beetel-card__line"></div>').addClass(line.cls || '').text(line.text)
          .appendTo(card);
      });
      card.appendTo('body');
      return card;
    }

    function notifyError(header, text) {
      try {
        if (window.APP && APP.notifications && APP.notifications.show_message_error) {
          APP.notifications.show_message_error({header: header, text: text});
        }
      } catch (e) { /* the card already says it */ }
    }

    function request(method, path, data, done, fail) {
      var options = {
        url: BACKEND + path,
        method: method,
        type: method,
        dataType: 'json',
        success: done,
        error: function (xhr) {
          var body = xhr && xhr.responseJSON;
          if (!body && xhr && xhr.responseText) {
            try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
          }
          fail(body, xhr ? xhr.status : 0);
        }
      };
      if (data) {
        options.contentType = 'application/json';
        options.data = JSON.stringify(data);
      }
      self.$authorizedAjax(options);
    }

    function loadStatus() {
      request('GET', '/amocrm/widget/status', null, function (body) {
        var telephony = (body && body.telephony) || {};
        if (body && body.ok) {
          showCard('ok', t('connected'), [
            {text: (body.user && body.user.name) || telephony.manager_name || '', cls: 'beetel-card__name'},
            {text: t('work_phone') + ' ' + (telephony.abonent_phone || ''), cls: 'beetel-card__phone'}
          ]);
        } else {
          showCard('error', t('not_connected'), [
            {text: errorText(body, 'not_connected'), cls: 'beetel-card__error'}
          ]);
        }
      }, function (body) {
        showCard('error', t('not_connected'), [
          {text: errorText(body, 'network'), cls: 'beetel-card__error'}
        ]);
      });
    }

    function call(phone) {
      request('POST', '/amocrm/widget/call', {phone: String(phone || '')}, function (body) {
        showCard('ok', t('calling'), [{text: (body && body.phone) || String(phone), cls: 'beetel-card__phone'}]);
      }, function (body) {
        var text = errorText(body, 'network');
        showCard('error', t('call_failed'), [{text: text, cls: 'beetel-card__error'}]);
        notifyError(t('call_failed'), text);
      });
    }

    this.callbacks = {
      render: function () {
        if (isCard()) {
          loadStatus();
        } else {
          $('#' + CARD_ID).remove();
        }
        return true;
      },
      init: function () {
        return true;
      },
      bind_actions: function () {
        // Our handler for the «Позвонить» action of phone numbers (params.value = the number).
        self.add_action('phone', function (params) {
          call(params && params.value);
        });
        return true;
      },
      settings: function () {
        return true;
      },
      onSave: function () {
        return true;
      },
      destroy: function () {
        $('#' + CARD_ID).remove();
        return true;
      },
      contacts: {
        selected: function () { return true; }
      },
      leads: {
        selected: function () { return true; }
      }
    };
    return this;
  };
});
