import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.demo/', '.bench/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
      eqeqeq: ['error', 'smart'],
    },
  },
  {
    // Nothing below the edges reads the environment: options are compiled once in src/cli and src/daemon.
    files: ['src/load/**', 'src/plan/**', 'src/run/**', 'src/state/**', 'src/source/**', 'providers/**'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'read options at the edge (src/cli, src/daemon) and pass them in' }],
    },
  },
);
