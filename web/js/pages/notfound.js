// Any hash the panel does not know.

import {h, replace, hashPath} from '../dom.js';

export default {
  id: 'not-found',
  title: 'Not found',
  mount(page, ctx) {
    replace(page,
      h('h1', null, 'No such page'),
      h('p', null, `The panel has no page "${ctx.params.path}". `, h('a', {href: hashPath(['dashboard'])}, 'Go to the dashboard'), '.'));
    ctx.ready();
  },
};
