import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'build-*/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  prettier,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.property.name='localeCompare']",
          message: 'Sort by byte order (compareBytes), never localeCompare (STYLE.md habit 7).',
        },
        {
          selector: "NewExpression[callee.name='Worker'] Property[key.name='eval']",
          message:
            'Workers are typed modules started from their bundled file, never code in strings (STYLE.md habit 11).',
        },
      ],
    },
  },
  {
    // Tests index into results they have just asserted on; `!` there is clearer than guards.
    files: ['__tests__/**', 'test-support/**', 'scripts/**', 'bench/**'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
